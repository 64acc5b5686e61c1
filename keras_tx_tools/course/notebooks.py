"""The exercises as Jupyter notebooks, and notebooks back as modules.

A solution module becomes a notebook cell by cell (:func:`module_to_notebook`):
its docstring, the lesson, becomes markdown; its imports one read-only code
cell; every function or class its own code cell, an nbgrader *solution* cell
when it holds ``### BEGIN SOLUTION`` (nbgrader's own marker, so the same text
serves the stubs, the release and nbgrader). :func:`notebook_to_module` goes
the other way, so a notebook hand-in is graded exactly like the ``.py`` files.

The exercises import each other (``from .masking import apply_mask``). In a
notebook that works because its first cell calls :func:`import_notebooks`,
which makes the notebooks of its folder importable as the modules of one
package and returns that package's name for ``__package__``.

Example:

>>> notebook = module_to_notebook("'Exercise 9: adding.'\\n\\ndef add(a, b):\\n    return a + b\\n")
>>> [cell.cell_type for cell in notebook.cells]
['markdown', 'code']
>>> print(notebook.cells[-1].source)
def add(a, b):
    return a + b
"""

import ast
import importlib.abc
import importlib.util
import pathlib
import re
import sys
import types

import nbformat

SETUP_TAG = "exercise-setup"
"""Cell tag of the setup cell, which belongs to the notebook and not to the module."""

PACKAGE = "notebook_exercises"
"""Name of the package the notebooks of one folder are imported into."""

SETUP_SOURCE = (
    "# Setup (read-only): lets this notebook import the other exercise notebooks of its\n"
    "# folder like modules, so `from .masking import apply_mask` runs your masking.ipynb.\n"
    "from keras_tx_tools.course.notebooks import import_notebooks\n"
    "\n"
    "__package__ = import_notebooks()"
)


def module_to_notebook(source, name=None):
    """Turn a (solution) module into an nbgrader notebook of the same code.

    Args:
        source: the module's source code.
        name: prefix of the cells' ids (default ``"cell"``).

    Returns:
        An `nbformat.NotebookNode`: the lesson as markdown, a setup cell when
        the module has relative imports, then the module's code cell by cell.
    """
    prefix = name or "cell"
    tree = ast.parse(source)
    lines = source.splitlines()
    body = tree.body
    cells = []
    docstring = ast.get_docstring(tree, clean=True)
    if docstring:
        cells.append(nbformat.v4.new_markdown_cell(_markdown_lesson(docstring)))
        body = body[1:]
    if any(isinstance(node, ast.ImportFrom) and node.level for node in body):
        cells.append(nbformat.v4.new_code_cell(SETUP_SOURCE, metadata={"tags": [SETUP_TAG]}))
    for chunk in _chunks(body, lines):
        cells.append(nbformat.v4.new_code_cell(chunk))
    for index, cell in enumerate(cells):
        cell.id = f"{prefix}-{index}"
        solution = "### BEGIN SOLUTION" in cell.source
        cell.metadata["nbgrader"] = nbgrader_metadata(cell.id, solution=solution, locked=not solution)
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def nbgrader_metadata(grade_id, *, solution=False, locked=False, points=None):
    """The ``nbgrader`` cell metadata (schema 3); `points` makes it a graded cell."""
    metadata = {
        "grade": points is not None,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
    }
    if points is not None:
        metadata["points"] = points
    return metadata


def notebook_to_module(path):
    """The Python module a student's exercise notebook amounts to.

    Every code cell except the setup cell and nbgrader's graded test cells,
    in order; IPython magics and shell lines (``%...``, ``!...``) are
    commented out.

    Args:
        path: the ``.ipynb`` file.

    Returns:
        The module's source code.
    """
    notebook = nbformat.read(path, as_version=4)
    cells = [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code"
        and SETUP_TAG not in cell.metadata.get("tags", [])
        and not _is_test_cell(cell)
    ]
    return "\n\n\n".join(_comment_out_magics(source) for source in cells) + "\n"


def import_notebooks(folder="."):
    """Make the notebooks of `folder` importable as modules of the package `PACKAGE`.

    ``masking.ipynb`` becomes ``notebook_exercises.masking`` (through
    `notebook_to_module`, so its test cells do not run), and ``.py`` files of
    the folder are found as usual. Calling it again with another folder
    replaces the package, and forgets the modules already imported from it.

    Returns:
        The package name, to assign to ``__package__`` so that relative
        imports (``from .masking import apply_mask``) resolve in a notebook.
    """
    folder = str(pathlib.Path(folder).resolve())
    for module in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
        del sys.modules[module]
    package = types.ModuleType(PACKAGE, "The exercise notebooks of one folder.")
    package.__path__ = [folder]
    sys.modules[PACKAGE] = package
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _NotebookFinder)]
    sys.meta_path.append(_NotebookFinder(folder))
    return PACKAGE


class _NotebookFinder(importlib.abc.MetaPathFinder):
    """Finds ``PACKAGE.<name>`` as ``<folder>/<name>.ipynb``."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)

    def find_spec(self, fullname, path, target=None):
        package, _, name = fullname.rpartition(".")
        notebook = self.folder / f"{name}.ipynb"
        if package != PACKAGE or not notebook.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, notebook, loader=_NotebookLoader(notebook))


class _NotebookLoader(importlib.abc.SourceLoader):
    """Loads a notebook as the module `notebook_to_module` makes of it."""

    def __init__(self, path):
        self.path = path

    def get_filename(self, fullname):
        return str(self.path)

    def get_data(self, path):
        return notebook_to_module(self.path).encode("utf-8")


def _chunks(body, lines):
    """The source of each top-level statement (with the comments after it), imports together."""
    starts = []
    for index, node in enumerate(body):
        if not (index and _is_import(node) and _is_import(body[index - 1])):
            decorators = getattr(node, "decorator_list", [])
            starts.append(min([node.lineno] + [decorator.lineno for decorator in decorators]))
    ends = [start - 1 for start in starts[1:]] + [len(lines)]
    return ["\n".join(lines[start - 1 : end]).rstrip() for start, end in zip(starts, ends)]


def _is_import(node):
    return isinstance(node, (ast.Import, ast.ImportFrom))


def _markdown_lesson(docstring):
    """A docstring in reStructuredText style as Markdown: title, headings, literal blocks."""
    title, _, rest = docstring.partition("\n")
    text = f"# {title}\n{rest}"
    text = re.sub(r"^(.+)\n=+$", r"## \1", text, flags=re.MULTILINE)
    text = re.sub(r"^(.+)\n-+$", r"### \1", text, flags=re.MULTILINE)
    return text.replace("::\n", ":\n")


def _is_test_cell(cell):
    """Whether `cell` is an nbgrader autograder test cell (graded, not a solution)."""
    flags = cell.metadata.get("nbgrader", {})
    return flags.get("grade", False) and not flags.get("solution", False)


def _comment_out_magics(source):
    """`source` with IPython-only lines turned into comments."""
    return "\n".join(
        f"# {line}" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )
