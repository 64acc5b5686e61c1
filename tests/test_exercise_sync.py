"""The exercise stubs are generated from the solutions and stay in sync with them."""

import pathlib
import shutil

import pytest

from keras_tx_tools.course.stubs import STUB, generate, main, strip_solutions

ROOT = pathlib.Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.course


def test_committed_exercises_are_the_generated_stubs():
    for path, stub in generate(ROOT / "solutions", ROOT / "exercises").items():
        assert path.read_text(encoding="utf-8") == stub, f"{path.name} is stale: run python -m keras_tx_tools.course.stubs"


def test_every_exercise_body_is_a_stub_and_nothing_else_changes():
    source = "def f(x):\n    '''Doc.'''\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n\nZ = 3\n"
    assert strip_solutions(source) == f"def f(x):\n    '''Doc.'''\n    {STUB}\n\nZ = 3\n"
    for path in (ROOT / "exercises").glob("*.py"):
        assert "SOLUTION" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "source, problem",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "line 1: ### BEGIN SOLUTION is never closed"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n", "line 2: ### BEGIN SOLUTION inside the region opened on line 1"),
        ("x = 1\n### END SOLUTION\n", "line 2: ### END SOLUTION without a ### BEGIN SOLUTION"),
    ],
)
def test_unbalanced_markers_are_rejected_with_their_line(source, problem):
    with pytest.raises(ValueError, match=problem):
        strip_solutions(source)


def test_check_detects_drift_and_regeneration_fixes_it(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    shutil.copytree(ROOT / "solutions", solutions, ignore=shutil.ignore_patterns("__pycache__"))
    folders = ["--solutions", str(solutions), "--exercises", str(exercises)]
    assert main([*folders, "--check"]) == 1  # no stubs yet
    assert main(folders) == 0
    capsys.readouterr()
    assert main([*folders, "--check"]) == 0
    count = len(list(solutions.glob("*.py")))
    assert capsys.readouterr().out == f"{exercises}: all {count} stubs are up to date with {solutions}\n"
    edited = solutions / "masking.py"
    edited.write_text(edited.read_text().replace("Exercise 2", "Exercise two"))
    assert main([*folders, "--check"]) == 1
    assert "masking.py is out of date" in capsys.readouterr().err
