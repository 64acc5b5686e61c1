"""The same files get the same score through every door, broken files included.

The doors: ``pytest grader --submission DIR`` (live reference), ``keras-tx grade-all`` (an
isolated process per hand-in, recorded reference), ``pytest grader`` inside the student
release, and the nbgrader notebooks (each test cell grades its exercise). The hand-ins are the
solutions broken in one way each; an exercise is graded with the student's own files, so a
broken file costs its exercise and those that import it, with the same messages everywhere.
"""

import concurrent.futures
import json
import shutil
import subprocess
import sys

import keras
import nbformat
import pytest

from keras_tx_tools.course import batch, nbgrader_course, notebooks, release
from test_grader import ROOT, grade, submission
from test_grader_seeds import checks

pytestmark = pytest.mark.slow

HAND_INS = {
    # name: (file, old, new)
    "syntax error in masking.py": ("masking.py", "def causal_mask(length):", "def causal_mask(length)"),
    "syntax error in model.py": (
        "model.py", "class TransformerBlock(keras.layers.Layer):", "class TransformerBlock(keras.layers.Layer)"),
    "import error in attention.py": ("attention.py", "import keras\n", "import keras\nimport no_such_module\n"),
    "missing function in masking.py": ("masking.py", "def apply_mask(scores, mask):", "def mask_scores(scores, mask):"),
}
BROKEN_ON_EVERY_BACKEND = ("syntax error in masking.py", "missing function in masking.py")
"""On PyTorch, the fastest backend here, every hand-in goes through every door; on the others these two:
a file that does not compile and one that does, each imported by the exercises after it."""
WORKERS = 2
GRADED = ("positional_embedding", "masking", "attention", "model", "sampling")
"""The exercises graded: those the hand-ins break, those that import them, and two that import
none of them (positional_embedding, sampling), whose points must not move. The later exercises
import the model too; the seeds and variants tests grade them."""


def outcome(exercises):
    """``{exercise: (points, {check: message})}`` of a report's exercises."""
    return {name: (result["points"], {test["name"]: test["message"] for test in result["tests"]})
            for name, result in exercises.items()}


def through_pytest_submission(folders, tmp_path):
    return {name: outcome(grade(tmp_path, "--submission", str(folder), exercises=GRADED)["exercises"])
            for name, folder in folders.items()}


def through_grade_all(folders, bundle, tmp_path):
    handed_in = tmp_path / "class"
    for name, folder in folders.items():
        shutil.copytree(folder, handed_in / name.replace(" ", "_"))
    grades = batch.grade_all(handed_in, grading_root=bundle, backend=keras.backend.backend(), jobs=WORKERS,
                             progress=False)
    assert all(grade.status == batch.GRADED for grade in grades), [grade.message for grade in grades]
    by_folder = {grade.student: outcome(grade.exercises) for grade in grades}
    return {name: by_folder[name.replace(" ", "_")] for name in folders}


def through_the_release(folders, bundle, tmp_path):
    def grade_in_release(name):
        copy = tmp_path / "releases" / name.replace(" ", "_")
        shutil.copytree(bundle, copy)
        for path in folders[name].glob("*.py"):
            shutil.copy(path, copy / "exercises" / path.name)
        report = copy / "report.json"
        command = [sys.executable, "-m", "pytest", "grader", "-q", "-p", "no:cacheprovider", "--grade-json", str(report)]
        subprocess.run(command, cwd=copy, capture_output=True, check=True)
        return outcome(json.loads(report.read_text())["exercises"])

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(folders, pool.map(grade_in_release, folders)))


def through_nbgrader(names, tmp_path):
    """``{hand-in: {exercise: points}}`` from the notebooks' test cells, for the hand-ins `names`."""
    def grade_notebooks(name):
        file, old, new = HAND_INS[name]
        folder = tmp_path / "notebooks" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        for solution in (ROOT / "solutions" / f"{exercise}.py" for exercise in GRADED):
            notebook = notebooks.module_to_notebook(solution.read_text(), solution.stem)
            if solution.name == file:
                [cell] = [cell for cell in notebook.cells if old in cell.source]
                cell.source = cell.source.replace(old, new)
            nbformat.write(notebook, folder / f"{solution.stem}.ipynb")
        return {exercise: sum(nbgrader_course.check(exercise, name, folder)
                              for _, name, _, _ in checks([exercise])) for exercise in GRADED}

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(names, pool.map(grade_notebooks, names)))


def test_every_door_gives_a_broken_hand_in_the_same_score(tmp_path):
    names = HAND_INS if keras.backend.backend() == "torch" else BROKEN_ON_EVERY_BACKEND
    folders = {name: submission(tmp_path / name.replace(" ", "_"), {file: [(old, new)]})
               for name, (file, old, new) in HAND_INS.items() if name in names}
    bundle = release.build_release(tmp_path / "release", exercises=GRADED)
    live = through_pytest_submission(folders, tmp_path)
    doors = {"grade-all": through_grade_all(folders, bundle, tmp_path),
             "the release": through_the_release(folders, bundle, tmp_path)}
    for door, graded in doors.items():
        assert graded == live, f"{door} grades otherwise than pytest grader --submission"
    points = {name: {exercise: given for exercise, (given, _) in result.items()} for name, result in live.items()}
    assert through_nbgrader(list(folders), tmp_path) == points
    for name in folders:  # every check of model.py names the broken file
        file = HAND_INS[name][0]
        assert points[name]["model"] == 0
        assert all(file in message for message in live[name]["model"][1].values()), live[name]["model"]
