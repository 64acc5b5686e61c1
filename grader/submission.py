"""Load the exercise files of a submission as fresh, isolated modules.

Each load creates a new package with a unique name whose ``__path__`` is the submission
folder, so the files' relative imports (``from .masking import apply_mask``) find their
siblings, nothing is added to ``sys.path``, and two submissions never share a module.
Every exercise is graded with the student's own files, never with reference code: graded
code must not see the solutions.

A file that is missing, does not parse, uses a forbidden shortcut or fails to import does not
stop the grading: its `StudentModule` carries the problem, and every check of that exercise
fails with it. So does every check of an exercise that imports such a file: ``model.py``
cannot be graded when the ``masking.py`` it imports does not load, and its message names
``masking.py`` as the cause. Messages hold no paths or module names that differ between two
gradings of the same files.

Example::

    exercises = load_submission("exercises")
    exercises["masking"].causal_mask(3)
"""

import ast
import importlib.util
import secrets
import sys
import types

from grader.failures import GRADED_PACKAGE, HandInProblem, describe_exception
from grader.gradebook import EXERCISES
from grader.limits import TimeLimitExceeded, time_limit
from grader.screening import refused_uses

IMPORT_TIME_LIMIT = 30
"""Seconds an exercise file may take to import."""


class StudentModule:
    """One loaded exercise file, or the reason it could not be loaded.

    Attribute access reaches the module's functions and classes; when the file could not be
    loaded, or lacks the name, it raises `HandInProblem` with a message for the student.
    """

    def __init__(self, exercise, module=None, problem=None, broken_files=None, untouched=False):
        self._exercise = exercise
        self._module = module
        self._problem = problem
        self.untouched = untouched
        """True for a file that loads and is still the exercise's stub: every use raises NotImplementedError."""
        self.broken_files = broken_files or ({f"{exercise}.py": problem} if problem else {})
        """``{file: problem}``: this file when it does not load, else the broken files it imports."""

    def __getattr__(self, name):
        if self._problem:
            raise HandInProblem(self._problem)
        try:
            return getattr(self._module, name)
        except AttributeError:
            raise HandInProblem(f"{self._exercise}.py defines no `{name}`") from None


def load_submission(folder):
    """Load the exercise files in `folder`.

    Args:
        folder: a `pathlib.Path` holding the exercise files (``masking.py``, ...) of the course
            (`grader.registry.COURSE`), given ones included.

    Returns:
        ``{exercise: StudentModule}`` in course order.
    """
    loaded = {}
    for exercise in EXERCISES:  # course order: a file's siblings are loaded before it
        loaded[exercise] = _load_exercise(folder, exercise, loaded)
    return loaded


def _sibling_imports(tree):
    """The exercises a parsed file imports relatively (``from .masking import ...``)."""
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [alias.name for alias in node.names]
            imported.update(name for name in names if name in EXERCISES)
    return [exercise for exercise in EXERCISES if exercise in imported]


def _load_exercise(folder, exercise, loaded):
    path = folder / f"{exercise}.py"
    if not path.is_file():
        return StudentModule(exercise, problem=f"{path.name} is missing from {folder}")
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=path.name)
    except SyntaxError as error:
        return StudentModule(
            exercise, problem=f"{path.name} has a syntax error on line {error.lineno}: {error.msg}"
        )
    findings = refused_uses(source)
    if findings:
        return StudentModule(
            exercise,
            problem=f"{path.name} uses what this course forbids ({'; '.join(findings)}): "
            "keras_tx, keras_hub, keras_nlp, MultiHeadAttention and dot_product_attention "
            "contain the answers; write the code yourself",
        )
    broken = {}  # {file: its problem}: the broken files this one imports, directly or not
    for sibling in _sibling_imports(tree):
        broken.update(loaded[sibling].broken_files if sibling in loaded else {})
    if broken:
        return StudentModule(exercise, problem=f"{path.name} cannot be graded until {' and '.join(broken)} "
                             f"load{'s' if len(broken) == 1 else ''}: {'; '.join(broken.values())}",
                             broken_files=broken)
    package = types.ModuleType(f"{GRADED_PACKAGE}{secrets.token_hex(8)}")
    package.__path__ = [str(folder)]
    sys.modules[package.__name__] = package
    name = f"{package.__name__}.{exercise}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path))
    sys.modules[name] = module
    try:
        with time_limit(IMPORT_TIME_LIMIT, f"importing {path.name}"):
            module.__spec__.loader.exec_module(module)
    except (Exception, TimeLimitExceeded) as error:
        return StudentModule(exercise, problem=f"importing {path.name} failed: {describe_exception(error, folder)}")
    return StudentModule(exercise, module, untouched=is_untouched_stub(tree))


def is_untouched_stub(tree):
    """True when every function of a parsed file only raises NotImplementedError: a stub not started.

    A function may keep its docstring and a ``super().__init__(...)`` call before the raise.

    >>> is_untouched_stub(ast.parse("def f():\\n    'Doc.'\\n    raise NotImplementedError('Exercise')"))
    True
    >>> is_untouched_stub(ast.parse("def f():\\n    return 1"))
    False
    """
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return bool(functions) and all(_only_raises_not_implemented(function.body) for function in functions)


def _only_raises_not_implemented(body):
    *before, last = body
    if not isinstance(last, ast.Raise):
        return False
    raised = last.exc.func if isinstance(last.exc, ast.Call) else last.exc
    if not (isinstance(raised, ast.Name) and raised.id == "NotImplementedError"):
        return False
    return all(_is_docstring(statement) or _is_super_init(statement) for statement in before)


def _is_docstring(statement):
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def _is_super_init(statement):
    call = statement.value if isinstance(statement, ast.Expr) else None
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "__init__" \
        and isinstance(call.func.value, ast.Call) and getattr(call.func.value.func, "id", None) == "super"
