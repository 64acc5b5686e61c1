"""Read a submitted file for what the course forbids: one list, two uses.

An exercise is to be solved with Keras and NumPy. `FORBIDDEN_MODULES` names each module a
submission has no business importing and what it reaches.

* `refused_uses` finds the uses the grader refuses outright: a library holding the answers
  (imported, or named in a string as for ``importlib.import_module``) or Keras' ready-made
  attention. A file with such a use scores nothing.
* `forbidden_imports` lists every forbidden import and every use of what imports or runs
  code chosen at run time (`DYNAMIC_CODE`: ``__import__``, ``importlib``, ``eval``, ``exec``,
  ``compile``, the built-ins reached through ``__builtins__``), for the instructor to look at;
  it does not change the grade. It reads the source and never runs it, so it sees
  ``__builtins__["__imp" + "ort__"]("o" + "s")`` use the built-ins but not what it imports:
  it is a report, not a wall (the wall is the sandbox, `grader.sandbox`).

Example:

>>> forbidden_imports("import numpy as np\\nfrom keras_tx import GPT\\n")
['line 2: keras_tx (the reference implementation)']
>>> forbidden_imports("model.compile()\\n_os = __builtins__['__imp' + 'ort__']('o' + 's')\\n")
['line 2: __builtins__ (reaches the built-ins, __import__ among them)']
>>> refused_uses("from keras_tx import GPT\\nlayer = keras.layers.MultiHeadAttention(2, 4)\\n")
['line 1: keras_tx', 'line 2: MultiHeadAttention']
"""

import ast

ANSWERS = "ready-made answers"

FORBIDDEN_MODULES = {
    "keras_tx": "the reference implementation",
    "keras_hub": ANSWERS,
    "keras_nlp": ANSWERS,
    "solutions": "the reference implementation",
    "grader": "the grader",
    "pytest": "the test runner",
    "_pytest": "the test runner",
    "builtins": "the interpreter's internals",
    "gc": "the interpreter's internals",
    "importlib": "the interpreter's internals",
    "inspect": "the interpreter's internals",
    "sys": "the interpreter's internals",
    "atexit": "the interpreter's internals",
    "os": "the operating system",
    "shutil": "the operating system",
    "signal": "the operating system",
    "subprocess": "the operating system",
    "multiprocessing": "the operating system",
    "ctypes": "the operating system",
    "socket": "the network",
}
"""Top-level module name -> what importing it reaches."""

REFUSED_MODULES = ("keras_tx", "keras_hub", "keras_nlp")
"""The modules of `FORBIDDEN_MODULES` that hold answers: the grader refuses a file using them."""

FORBIDDEN_NAMES = ("MultiHeadAttention", "dot_product_attention")
"""Ready-made attention in Keras (``keras.layers.MultiHeadAttention``, ``keras.ops.dot_product_attention``)."""

DYNAMIC_CODE = {
    "__import__": "imports a module chosen at run time",
    "import_module": "imports a module chosen at run time",
    "eval": "runs code chosen at run time",
    "exec": "runs code chosen at run time",
    "compile": "runs code chosen at run time",
    "__builtins__": "reaches the built-ins, __import__ among them",
}
"""Names that import or run code chosen at run time, out of sight of this check: reported wherever
the source names them, as attributes too when in `DYNAMIC_ATTRIBUTES` (``model.compile`` is Keras')."""

DYNAMIC_ATTRIBUTES = ("__import__", "import_module", "__builtins__")


def refused_uses(source):
    """Each use of a refused module or name in `source`, ``"line N: name"``, in line order.

    Raises `SyntaxError` when `source` does not parse.
    """
    findings = set()
    for node in ast.walk(ast.parse(source)):
        modules = _imported_modules(node)
        names = [alias.name for alias in node.names] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            modules = [node.value]  # importlib.import_module("keras_tx") and the like
        findings.update((node.lineno, module) for module in modules if module.split(".")[0] in REFUSED_MODULES)
        findings.update((node.lineno, name) for name in names if name in FORBIDDEN_NAMES)
    return [f"line {line}: {what}" for line, what in sorted(findings)]


def forbidden_imports(source, allowed=()):
    """List the forbidden imports and dynamic-code calls in `source`.

    Args:
        source: Python source code of one submitted file.
        allowed: top-level module names to accept although they are in
            `FORBIDDEN_MODULES` (for example, those the exercise stubs import themselves).

    Returns:
        Findings, ``"line N: module (what it reaches)"``, in source order; empty for a clean
        file or one that does not parse (the grader reports the syntax error).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    findings = []
    for node in ast.walk(tree):
        for module in _imported_modules(node):
            top = module.split(".")[0]
            if top in FORBIDDEN_MODULES and top not in allowed:
                findings.append((node.lineno, f"{module} ({FORBIDDEN_MODULES[top]})"))
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if name in DYNAMIC_CODE and (isinstance(node, ast.Name) or name in DYNAMIC_ATTRIBUTES):
            findings.append((node.lineno, f"{name} ({DYNAMIC_CODE[name]})"))
    return [f"line {line}: {what}" for line, what in sorted(set(findings))]


def imported_modules(source):
    """The top-level names of the modules `source` imports absolutely (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    return {module.split(".")[0] for node in ast.walk(tree) for module in _imported_modules(node)}


def _imported_modules(node):
    """The absolute module names an ``import`` statement names (none for other nodes)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []
