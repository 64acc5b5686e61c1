"""An instructor's own exercise, added as grader/README.md says, through release, grade-all and nbgrader.

The worked example is ``tests/data/custom_exercise``: ``rms_norm``, a solution file with its
lesson and a checks file with points. Each test works on a copy of the repository with the
example added: its files, one line in ``grader/registry.py``, the stubs and the recordings.
"""

import ast
import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import pytest
from nbgrader.api import Gradebook

from keras_tx_tools.course import nbgrader_course, release

pytestmark = [pytest.mark.course, pytest.mark.slow]

ROOT = release.repository_root()
EXAMPLE = pathlib.Path(__file__).parent / "data" / "custom_exercise"
BUG = ("axis=-1, keepdims=True", "axis=0, keepdims=True")
"""A classic mistake: the mean square over the wrong axis."""


def _run(command, cwd, root, check=True):
    """Run `command` in `cwd` with the course copy `root` first on the path; its output."""
    env = {**os.environ, "PYTHONPATH": str(root), "KERAS_BACKEND": keras.backend.backend(),
           "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert not check or result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def add_exercise(root, example):
    """Add the exercise of the folder `example` to the course repository `root`, as grader/README.md says."""
    for part in ("solutions", "grader"):
        for path in (example / part).glob("*.py"):
            shutil.copy(path, root / part)
    registry = root / "grader" / "registry.py"
    source = registry.read_text()
    course = next(node for node in ast.parse(source).body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COURSE")
    lines = source.splitlines(keepends=True)
    entry = f"    {(example / 'registry_entry.txt').read_text().strip()}\n"
    registry.write_text("".join(lines[: course.end_lineno - 1]) + entry + "".join(lines[course.end_lineno - 1:]))
    _run([sys.executable, "-m", "keras_tx_tools.course.stubs"], root, root)
    _run([sys.executable, "-m", "grader.record_reference", "--exercises", "rms_norm"], root, root)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom") / "course"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(".*", "__pycache__", "runs", "nbgrader", "benchmarks"))
    add_exercise(root, EXAMPLE)
    return root


def _hand_in(folder, bug=None):
    folder.mkdir(parents=True)
    source = (EXAMPLE / "solutions" / "rms_norm.py").read_text()
    (folder / "rms_norm.py").write_text(source.replace(*bug) if bug else source)
    return folder


def test_the_exercise_is_in_the_course_with_its_stub_and_recording(course):
    assert "NotImplementedError" in (course / "exercises" / "rms_norm.py").read_text()
    assert (course / "grader" / "reference" / "rms_norm.npz").is_file()
    assert BUG[0] in (EXAMPLE / "solutions" / "rms_norm.py").read_text()


def test_a_release_of_the_exercise_grades_its_stub_0_and_its_solution_10(course, tmp_path):
    bundle = tmp_path / "bundle"
    _run([sys.executable, "-m", "keras_tx_tools", "release", str(bundle), "--exercises", "rms_norm"], course, course)
    assert sorted(path.name for path in (bundle / "exercises").glob("*.py")) == ["__init__.py", "rms_norm.py"]
    assert "| 9 | `exercises/rms_norm.py` | RMSNorm, a LayerNorm without the mean | 10 |" in (bundle / "README.md").read_text()
    grade = [sys.executable, "-m", "pytest", "grader", "-q", "-p", "no:cacheprovider", "--grade-json"]
    output = _run([*grade, str(tmp_path / "stub.json")], bundle, bundle)
    assert "not attempted yet" in output
    _run([*grade, str(tmp_path / "solution.json"), "--submission", str(_hand_in(tmp_path / "solution"))], bundle, bundle)
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("stub", "solution")}
    assert {name: (report["total"], report["max"]) for name, report in reports.items()} == {
        "stub": (0, 10), "solution": (10, 10)}


def test_grade_all_grades_a_class_on_the_exercise(course, tmp_path):
    _hand_in(tmp_path / "submissions" / "correct")
    _hand_in(tmp_path / "submissions" / "buggy", BUG)
    _run([sys.executable, "-m", "keras_tx_tools", "grade-all", str(tmp_path / "submissions"), "--exercises", "rms_norm",
          "--backend", keras.backend.backend(), "--out", str(tmp_path / "out"), "--no-progress"], course, course)
    rows = {row["student"]: row for row in csv.DictReader(open(tmp_path / "out" / "grades.csv"))}
    # The mistake keeps the output's length-invariance (4 points) and fails the comparison (6 points).
    assert [(rows[name]["rms_norm"], rows[name]["max"]) for name in ("correct", "buggy")] == [("10", "10"), ("4", "10")]


def test_nbgrader_autogrades_the_exercise(course, tmp_path):
    nbgrader = tmp_path / "nbgrader"
    _run([sys.executable, "-m", "keras_tx_tools", "release", "--nbgrader", str(nbgrader), "--exercises", "rms_norm"],
         course, course)
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", nbgrader_course.ASSIGNMENT], nbgrader, course)
    handed_in = nbgrader / "submitted" / "ada" / nbgrader_course.ASSIGNMENT
    handed_in.mkdir(parents=True)
    shutil.copy(nbgrader / "source" / nbgrader_course.ASSIGNMENT / "rms_norm.ipynb", handed_in)
    _run([sys.executable, "-m", "nbgrader", "autograde", nbgrader_course.ASSIGNMENT], nbgrader, course)
    with Gradebook(f"sqlite:///{nbgrader / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook("rms_norm", nbgrader_course.ASSIGNMENT, "ada")
        assert (notebook.score, notebook.max_score) == (10, 10)


def test_checks_of_an_exercise_missing_from_the_registry_get_one_clear_error(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(".*", "__pycache__", "runs", "nbgrader", "benchmarks"))
    shutil.copy(EXAMPLE / "grader" / "test_rms_norm.py", root / "grader")
    result = subprocess.run([sys.executable, "-m", "pytest", "grader", "--collect-only", "-q", "-p", "no:cacheprovider"],
                            cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True)
    assert result.returncode != 0
    assert "test_rms_norm.py checks 'rms_norm', which grader/registry.py does not grade" in result.stdout + result.stderr
