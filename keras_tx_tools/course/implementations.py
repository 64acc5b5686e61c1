"""Find code that computes what an exercise asks: what no student release may hold.

A release may explain the formulas (the lessons do, in docstrings and comments), but no code in
it may compute them: no layer library, no reference algorithm inside the grader, no answer. The
scan reads the *code* of every Python file, notebook and Markdown ``python`` block of a folder
(docstrings, comments and other strings are not code) and reports each function, or module's
top level, that has one of these signatures:

* the attention formula: a softmax (or ``exp`` and ``sum``), a square root (or ``** 0.5``) and a
  matrix product together;
* the sine/cosine table: ``sin`` and ``cos`` (called or not) with the constant 10000;
* a LayerNorm written out: a mean, a variance (or square, or standard deviation) and a square root;
* GELU written out: ``erf``, or the tanh approximation's constant 0.044715;
* a causal mask: ``tril``/``triu``/``band_part``, or two ``arange`` positions compared;
* byte-pair merges: neighbouring tokens paired, ``zip(ids, ids[1:])`` or ``(ids[i], ids[i + 1])``;
* a warm-up and cosine learning-rate schedule: ``cos`` called with ``pi``;
* top-p filtering or an inverse-CDF draw: ``cumsum`` with a sort or ``searchsorted``;
* a key/value cache written in place: ``slice_update``;
* GPT-2's fused ``c_attn`` put into the three projections: a ``"c_attn"`` string in code that
  names ``query_dense``, ``key_dense`` and ``value_dense``;
* a layer class of the library (`library_classes`), unless each of its methods is a stub.

Files handed out as given code (`keras_tx_tools.course.stubs.GIVEN`) are finished code on
purpose and are not scanned.

Example::

    implementations("release/", library_classes("."))   # [] for a release fit for students
"""

import ast
import json
import pathlib
import re

from grader.submission import is_untouched_stub
from keras_tx_tools.course import stubs

SIGNATURES = {
    "the attention formula (softmax of QK^T / sqrt(d))": lambda scope: bool(
        (scope.calls & {"softmax"} or scope.calls >= {"exp", "sum"}) and (scope.calls & {"sqrt", "rsqrt"} or scope.half_powers)
        and (scope.calls & {"matmul", "einsum", "dot", "tensordot", "bmm"} or scope.matmuls)),
    "the sine/cosine table": lambda scope: bool(scope.names >= {"sin", "cos"} and 10000 in scope.numbers),
    "a LayerNorm written out (mean/variance normalisation)": lambda scope: bool(
        scope.calls & {"mean", "moments"} and scope.calls & {"var", "variance", "std", "square", "moments"}
        and (scope.calls & {"sqrt", "rsqrt"} or scope.half_powers)),
    "GELU written out": lambda scope: bool("erf" in scope.calls or 0.044715 in scope.numbers),
    "a causal mask (tril, or compared arange positions)": lambda scope: bool(
        scope.calls & {"tril", "triu", "band_part"} or scope.position_comparisons),
    "byte-pair merges (neighbouring tokens paired)": lambda scope: scope.neighbour_pairs,
    "a warm-up and cosine schedule": lambda scope: bool("cos" in scope.calls and "pi" in scope.names),
    "top-p filtering or an inverse-CDF draw (cumsum with a sort)": lambda scope: bool(
        "cumsum" in scope.calls and scope.calls & {"sort", "argsort", "top_k", "searchsorted"}),
    "a key/value cache written in place (slice_update)": lambda scope: bool(
        scope.calls & {"slice_update", "dynamic_update_slice"}),
    "GPT-2's fused c_attn split into the query, key and value": lambda scope: bool(
        any("c_attn" in text for text in scope.strings) and scope.names >= {"query_dense", "key_dense", "value_dense"}),
}
"""``{what it computes: whether a scope's code has its signature}``."""

_LAYER_BASES = {"Layer", "Model"}
_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_ORDER_CALLS = {"less", "less_equal", "greater", "greater_equal"}


class Scope:
    """What one function (or a module's top level) names, calls, multiplies, raises to a power and compares."""

    def __init__(self, nodes, positions=frozenset()):
        self.names, self.calls, self.numbers, self.strings = set(), set(), set(), set()
        self.matmuls = self.half_powers = self.position_comparisons = self.neighbour_pairs = False
        children = [child for root in nodes for child in ast.walk(root)]
        docstrings = {id(node.value) for node in children if isinstance(node, ast.Expr)}
        for node in children:
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                self.strings.add(node.value)
            if isinstance(node, (ast.Name, ast.Attribute)):
                self.names.add(getattr(node, "attr", getattr(node, "id", None)))
            self.neighbour_pairs |= _pairs_neighbours(node)
            if isinstance(node, ast.Call):
                self.calls.add(_called(node))
                self.position_comparisons |= _called(node) in _ORDER_CALLS and len(node.args) == 2 and all(
                    _is_position(argument, positions) for argument in node.args)
            elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
                self.numbers.add(node.value)
            elif isinstance(node, ast.BinOp):
                self.matmuls |= isinstance(node.op, ast.MatMult)
                self.half_powers |= isinstance(node.op, ast.Pow) and _number(node.right) in (0.5, -0.5)
            elif isinstance(node, ast.Compare):
                self.position_comparisons |= len(node.ops) == 1 and isinstance(node.ops[0], _ORDER) and all(
                    _is_position(operand, positions) for operand in (node.left, *node.comparators))


def _positions(tree):
    """The names a parsed file assigns from ``arange`` positions, directly or through a function of its own."""
    makers = {"arange"} | {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                           and any(isinstance(call, ast.Call) and _called(call) == "arange" for call in ast.walk(node))}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(call, ast.Call) and _called(call) in makers
                                                 for call in ast.walk(node.value)):
            names |= {target.id for root in node.targets for target in ast.walk(root) if isinstance(target, ast.Name)}
    return names


def _is_position(expression, positions):
    """Whether `expression` calls ``arange`` or reads one of the names `positions`."""
    return any((isinstance(node, ast.Call) and _called(node) == "arange")
               or (isinstance(node, ast.Name) and node.id in positions) for node in ast.walk(expression))


def _pairs_neighbours(node):
    """Whether `node` pairs each item of a sequence with the next: ``zip(x, x[1:])`` or ``(x[i], x[i + 1])``."""
    if isinstance(node, ast.Call) and _called(node) == "zip" and len(node.args) == 2:
        first, second = node.args
        return (isinstance(second, ast.Subscript) and isinstance(second.slice, ast.Slice)
                and _number(second.slice.lower) == 1 and ast.dump(second.value) == ast.dump(first))
    if isinstance(node, ast.Tuple) and len(node.elts) == 2 and all(isinstance(item, ast.Subscript) for item in node.elts):
        first, second = node.elts
        return (ast.dump(first.value) == ast.dump(second.value) and isinstance(second.slice, ast.BinOp)
                and isinstance(second.slice.op, ast.Add) and _number(second.slice.right) == 1
                and ast.dump(second.slice.left) == ast.dump(first.slice))
    return False


def _called(call):
    """The name of the function a call calls (``ops.arange(3)`` -> ``"arange"``)."""
    return getattr(call.func, "attr", getattr(call.func, "id", None))


def library_classes(root):
    """The layer and model classes of the library ``keras_tx/`` in `root` (and their subclasses)."""
    classes = [node for path in sorted(pathlib.Path(root, "keras_tx").glob("*.py"))
               for node in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(node, ast.ClassDef)]
    names = set()
    while True:
        found = {node.name for node in classes
                 if any(getattr(base, "attr", getattr(base, "id", None)) in _LAYER_BASES | names for base in node.bases)}
        if found == names:
            return names
        names = found


def implementations(folder, classes=()):
    """``["file:line: what"]`` for every piece of code under `folder` that computes what an exercise asks.

    Args:
        folder: the folder to scan (a release).
        classes: names of the library's layer classes (`library_classes`).
    """
    folder = pathlib.Path(folder)
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(folder)
        for source in _code(path):
            if stubs.is_given_code(source):
                continue
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            found += [f"{name}:{line}: {what}" for line, what in _signatures(tree, set(classes))]
    return found


def _signatures(tree, classes):
    """``[(line, what)]`` for the scopes of a parsed file that have a signature, and its library classes."""
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    top_level = [node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    positions = _positions(tree)
    scopes = [(node.lineno, Scope([node], positions)) for node in functions]
    scopes += [(1, Scope(top_level, positions))] if top_level else []
    found = [(line, what) for line, scope in scopes for what, has in SIGNATURES.items() if has(scope)]
    found += [(node.lineno, f"the library's layer class {node.name}") for node in ast.walk(tree)
              if isinstance(node, ast.ClassDef) and node.name in classes and not is_untouched_stub(node)]
    return sorted(found)


def _code(path):
    """The Python sources a file holds: itself, a notebook's code cells, a Markdown file's ``python`` blocks."""
    text = path.read_text(encoding="utf-8", errors="ignore")
    if path.suffix == ".py":
        return [text]
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            return []
        return ["".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                for cell in cells if cell.get("cell_type") == "code"]
    if path.suffix == ".md":
        return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    return []


def _number(node):
    """The value of a numeric literal (negative ones included), else ``None``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _number(node.operand)
        return None if value is None else -value
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) else None
