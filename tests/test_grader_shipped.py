"""The grader handed to students computes none of what the exercises ask.

Every reference algorithm and every mistake fingerprint lives in ``grader/instructor/``, which
the student release leaves out; the rest of ``grader/`` compares with recorded outputs. This
scans the shipped modules' code (their strings, the messages, aside) for the pieces of the
exercises: a triangular mask, the sine/cosine table, a LayerNorm or GELU written out, the
products and transposes of attention, a cross-entropy written out and byte pairs counted.
"""

import ast
import pathlib

import pytest

GRADER = pathlib.Path(__file__).resolve().parent.parent / "grader"
SHIPPED = sorted(path for path in GRADER.glob("*.py"))

FORBIDDEN_NAMES = {
    "tril": "a causal mask", "triu": "a causal mask",
    "sin": "the sine/cosine table", "cos": "the sine/cosine table",
    "var": "a LayerNorm written out", "std": "a LayerNorm written out", "rsqrt": "a LayerNorm written out",
    "erf": "a GELU written out", "tanh": "a GELU written out",
    "matmul": "attention's products", "einsum": "attention's products", "swapaxes": "attention's transposes",
    "logsumexp": "a cross-entropy written out",
    "log_softmax": "a cross-entropy written out", "take_along_axis": "a cross-entropy written out",
    "Counter": "byte pairs counted",
}
"""Functions and methods whose call computes a piece of an exercise: what each would compute."""


def pieces(source):
    """``[(line, what)]``: the exercises' pieces that `source`'s code computes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
            if name in FORBIDDEN_NAMES:
                found.append((node.lineno, f"{name}(): {FORBIDDEN_NAMES[name]}"))
            if name in ("power", "pow") and any(is_base(argument) for argument in node.args[:1]):
                found.append((node.lineno, "power(10000, ...): the sine/cosine table"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            found.append((node.lineno, "@: attention's products"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and is_base(node.left):
            found.append((node.lineno, "10000 ** ...: the sine/cosine table"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(module.split(".")[0] in ("keras_tx", "solutions") for module in modules):
                found.append((node.lineno, f"import {modules[0]}: the library or the solutions"))
    return sorted(found)


def is_base(node):
    """Whether `node` is the sine/cosine table's base, 10000."""
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value == 10000


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_a_shipped_grader_file_computes_nothing_the_exercises_ask(path):
    found = pieces(path.read_text())
    assert not found, f"grader/{path.name} computes what an exercise asks: {found}"


def test_the_instructor_code_is_imported_only_where_the_live_reference_runs():
    """No shipped module imports `grader.instructor` when it is loaded: the release, which has none,
    must import every module. The imports inside functions are those of the live reference (its
    inputs' draws and fingerprints); the release never calls them (`tests/test_release.py` grades a
    built release, without `grader/instructor/`, to full marks)."""
    def imports_instructor_when_loaded(path):
        return any(isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grader.instructor")
                   for node in ast.parse(path.read_text()).body)

    def imports_instructor(path):
        return any(isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grader.instructor")
                   for node in ast.walk(ast.parse(path.read_text())))

    assert not [path.name for path in SHIPPED if imports_instructor_when_loaded(path)]
    assert "reference.py" in [path.name for path in SHIPPED if imports_instructor(path)]


def test_the_scan_finds_the_pieces_it_looks_for():
    code = "\n".join(["mask = np.tril(np.ones((3, 3)))", "table = np.sin(p / 10000 ** (2 * i / d))",
                      "scores = q @ k.T", "y = (x - x.mean()) / np.sqrt(x.var() + 1e-5)",
                      "angles = p / ops.power(10000.0, 2 * i / d)", "seed = seed % 10_000",
                      "loss = -np.take_along_axis(np.log(p), t, -1)", "counts = collections.Counter(pairs)"])
    assert [line for line, _ in pieces(code)] == [1, 2, 2, 3, 4, 5, 7, 8]
    assert pieces('message = "sin in column 2i: p / 10000 ** (2i / dim)"') == []
