"""The exercises as nbgrader notebooks: generated from the solutions, graded like `pytest grader`."""

import ast
import concurrent.futures
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import nbformat
import pytest
from nbgrader.api import Gradebook

from keras_tx_tools.course import batch, nbgrader_course, notebooks, release

pytestmark = pytest.mark.course

ROOT = release.repository_root()
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "nbgrader"

FLOW_EXERCISES = ("masking", "attention")
"""The exercises of the end-to-end flow: attention imports masking, so notebook order matters."""

BUG = ("attention.py", " / ops.sqrt(depth)", "")
"""The buggy student's mistake: attention scores not divided by sqrt(d)."""


def _code(source):
    """The module's code as an AST dump, without its docstring."""
    tree = ast.parse(source)
    if ast.get_docstring(tree) is not None:
        tree.body = tree.body[1:]
    return ast.dump(tree)


def test_the_course_notebooks_hold_the_solution_code_and_a_graded_cell_per_grader_test():
    sources = sorted((COURSE / "source" / nbgrader_course.ASSIGNMENT).glob("*.ipynb"))
    assert [path.stem for path in sources] == sorted(path.stem for path in SOLUTIONS.glob("[!_]*.py"))
    hidden_cells = 0
    for path in sources:
        assert _code(notebooks.notebook_to_module(path)) == _code((SOLUTIONS / f"{path.stem}.py").read_text())
        cells = nbformat.read(path, as_version=4).cells
        graded = [cell for cell in cells if cell.metadata["nbgrader"]["grade"]]
        hidden = [cell for cell in graded if "BEGIN HIDDEN TESTS" in cell.source]
        assert graded and all(cell.metadata["nbgrader"]["points"] > 0 for cell in graded)
        assert any(cell.metadata["nbgrader"]["solution"] for cell in cells)
        assert len(hidden) < len(graded), path.name
        hidden_cells += len(hidden)
    assert hidden_cells
    assert "ClearHiddenTests" in (COURSE / "nbgrader_config.py").read_text()


def test_the_test_cells_grade_at_the_hint_level_of_the_course():
    tests = [{"name": "test_causal_mask", "max": 5}]
    [_, full] = nbgrader_course.test_cells("masking", tests)
    [_, located] = nbgrader_course.test_cells("masking", tests, hints="locate")
    assert full.source.endswith("check('masking', 'test_causal_mask')")
    assert located.source.endswith("check('masking', 'test_causal_mask', hints='locate')")


def test_a_notebook_imports_the_notebooks_beside_it(tmp_path, monkeypatch):
    for name in FLOW_EXERCISES:
        nbformat.write(notebooks.module_to_notebook((SOLUTIONS / f"{name}.py").read_text(), name),
                       tmp_path / f"{name}.ipynb")
    monkeypatch.chdir(tmp_path)
    package = notebooks.import_notebooks()
    try:
        attention = __import__(f"{package}.attention", fromlist=["scaled_dot_product_attention"])
        output, weights = attention.scaled_dot_product_attention(*[keras.ops.ones((1, 3, 4))] * 3)
        assert tuple(weights.shape) == (1, 3, 3)
        assert attention.apply_mask.__module__ == f"{package}.masking"
    finally:
        sys.modules.pop(package, None)


def _nbgrader(course, *arguments):
    """Run the nbgrader command line in `course`, offline; fail with its output if it fails."""
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run([sys.executable, "-m", "nbgrader", *arguments], cwd=course, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _write_modules(folder, bug=None):
    """The flow's solution modules in `folder`, with `bug` ``(file, old, new)`` applied."""
    folder.mkdir(parents=True)
    for name in FLOW_EXERCISES:
        source = (SOLUTIONS / f"{name}.py").read_text()
        if bug and bug[0] == f"{name}.py":
            assert bug[1] in source, "the solution changed; update BUG"
            source = source.replace(bug[1], bug[2])
        (folder / f"{name}.py").write_text(source)
    return folder


@pytest.mark.slow
def test_nbgrader_grades_a_correct_and_a_buggy_submission_like_pytest_grader(tmp_path):
    # pytest grader on the two submissions' code, as .py files.
    code = {"correct": _write_modules(tmp_path / "code" / "correct"),
            "buggy": _write_modules(tmp_path / "code" / "buggy", BUG)}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        grades = dict(zip(code, pool.map(
            lambda folder: batch.grade_submission(folder, grading_root=ROOT, backend=keras.backend.backend(),
                                                  exercises=list(FLOW_EXERCISES), seed=nbgrader_course.SEED),
            code.values())))
    assert all(grade.status == batch.GRADED for grade in grades.values()), [g.message for g in grades.values()]
    assert grades["buggy"].points("attention") < grades["correct"].points("attention")

    # The same code as an nbgrader course, generated, handed in, autograded, fed back.
    course = tmp_path / "course"
    tests = {name: report["tests"] for name, report in grades["correct"].exercises.items()}
    nbgrader_course.write_course(course, code["correct"], tests)
    _nbgrader(course, "generate_assignment", nbgrader_course.ASSIGNMENT)
    for student, folder in code.items():
        handed_in = course / "submitted" / student / nbgrader_course.ASSIGNMENT
        handed_in.mkdir(parents=True)
        nbgrader_course.write_course(tmp_path / "handed" / student, folder, tests)
        for notebook in (tmp_path / "handed" / student / "source" / nbgrader_course.ASSIGNMENT).glob("*.ipynb"):
            shutil.copy(notebook, handed_in)
            assert _code(notebooks.notebook_to_module(notebook)) == _code((folder / f"{notebook.stem}.py").read_text())
    _nbgrader(course, "autograde", nbgrader_course.ASSIGNMENT)
    _nbgrader(course, "generate_feedback", nbgrader_course.ASSIGNMENT)

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student, grade in grades.items():
            for exercise in FLOW_EXERCISES:
                notebook = gradebook.find_submission_notebook(exercise, nbgrader_course.ASSIGNMENT, student)
                assert notebook.score == grade.points(exercise), (student, exercise)
    feedback = "".join(path.read_text() for path in (course / "feedback" / "buggy").rglob("*.html"))
    hidden = [test["name"] for test in tests["attention"] if "matches_reference" in test["name"]]
    assert hidden and "test_attention_weights_are_probabilities" in feedback
    assert not any(name in feedback for name in hidden)


def test_a_course_of_some_exercises_gives_the_ones_they_import_as_read_only_notebooks(tmp_path):
    tests = {"attention": [{"name": "test_weights", "max": 5, "hidden": False}]}
    written = nbgrader_course.write_course(tmp_path, SOLUTIONS, tests, exercises=["attention"])
    assert [path.stem for path in written] == ["masking", "attention"]
    given = nbformat.read(written[0], as_version=4)
    assert given.metadata["keras_tx"]["given"] and "GIVEN CODE" in given.cells[0].source
    assert all(cell.metadata["nbgrader"]["locked"] and not cell.metadata["nbgrader"]["grade"]
               and not cell.metadata["nbgrader"]["solution"] for cell in given.cells)
    assert _code(notebooks.notebook_to_module(written[0])) == _code((SOLUTIONS / "masking.py").read_text())
    asked = nbformat.read(written[1], as_version=4).cells
    assert [cell.metadata["nbgrader"].get("points") for cell in asked if cell.metadata["nbgrader"]["grade"]] == [5]
