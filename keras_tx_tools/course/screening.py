"""Find imports a submission has no business making.

An exercise is to be solved with Keras and NumPy. A submission that imports
the reference library (``keras_tx``), reaches for the grader or pytest, or
for the operating system and the interpreter's internals, is either copying
an answer or trying to influence its own grading. :func:`forbidden_imports`
reads the source (it never runs it) and names each such import with its line,
so the instructor can look; grading itself is not changed by it (the grader
refuses on its own account files that import a library holding the answers).

Example:

>>> forbidden_imports("import numpy as np\\nfrom keras_tx import GPT\\n")
['line 2: keras_tx (the reference implementation)']
"""

import ast

FORBIDDEN_MODULES = {
    "keras_tx": "the reference implementation",
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

FORBIDDEN_CALLS = {"__import__", "eval", "exec", "compile"}
"""Built-ins that run or import code chosen at run time, out of sight of this check."""


def forbidden_imports(source, allowed=()):
    """List the forbidden imports and dynamic-code calls in `source`.

    Args:
        source: Python source code of one submitted file.
        allowed: top-level module names to accept although they are in
            `FORBIDDEN_MODULES` (for example, those the exercise stubs import
            themselves).

    Returns:
        Human-readable findings, ``"line N: module (what it reaches)"``, in
        source order; empty for a clean file. A file that does not parse
        yields no findings (the grader reports the syntax error).
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
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            findings.append((node.lineno, f"{node.func.id}() (runs code chosen at run time)"))
    return [f"line {line}: {what}" for line, what in sorted(findings)]


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
