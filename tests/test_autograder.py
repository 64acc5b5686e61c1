"""The Gradescope autograder: the bundle, and ``run_autograder`` on a fake ``/autograder`` tree."""

import json
import os
import shutil
import sys
import zipfile

import keras
import pytest

from grader.registry import load_course
from grader.sandbox import bubblewrap_works
from keras_tx_tools import cli
from keras_tx_tools.course import autograder
from test_grader import MAXIMA, grade, submission
from test_sandbox import GRADER_PEAK_BYTES, MEMORY_BOMB, WALKS_UP, WRONG_MASK, _run_measured

# Gradescope's documented fields of results.json (https://gradescope-autograders.readthedocs.io,
# "Output format"): the whole result, and each test.
RESULT_FIELDS = {"score": (int, float), "execution_time": (int, float), "output": str, "output_format": str,
                 "test_output_format": str, "test_name_format": str, "visibility": str, "stdout_visibility": str,
                 "extra_data": dict, "tests": list, "leaderboard": list}
TEST_FIELDS = {"score": (int, float), "max_score": (int, float), "status": str, "name": str, "name_format": str,
               "number": str, "output": str, "output_format": str, "tags": list, "visibility": str,
               "extra_data": dict}


def check_gradescope_fields(results):
    """Fail unless `results` uses only Gradescope's fields, with their types and allowed values."""
    assert set(results) <= set(RESULT_FIELDS), set(results) - set(RESULT_FIELDS)
    for field, value in results.items():
        assert isinstance(value, RESULT_FIELDS[field]), field
    assert "score" in results or all("score" in test for test in results["tests"])
    for test in results["tests"]:
        assert set(test) <= set(TEST_FIELDS), set(test) - set(TEST_FIELDS)
        for field, value in test.items():
            assert isinstance(value, TEST_FIELDS[field]), (test.get("name"), field)
        assert test.get("status", "passed") in ("passed", "failed")
        assert test.get("visibility", "visible") in autograder.VISIBILITIES
        assert 0 <= test["score"] <= test["max_score"]


@pytest.mark.course
def test_the_bundle_holds_the_scripts_the_grader_and_pinned_dependencies(tmp_path):
    assert cli.main(["autograder", str(tmp_path / "autograder.zip"), "--backend", "jax"]) == 0
    with zipfile.ZipFile(tmp_path / "autograder.zip") as bundle:
        names = set(bundle.namelist())
        setup = bundle.read("setup.sh").decode()
        modes = {name: bundle.getinfo(name).external_attr >> 16 for name in ("setup.sh", "run_autograder")}
    assert {"setup.sh", "run_autograder", "grader/conftest.py", "solutions/attention.py",
            "keras_tx_tools/course/autograder.py", "pyproject.toml"} <= names
    assert not any("__pycache__" in name for name in names)
    assert all(mode & 0o111 for mode in modes.values())
    assert "bubblewrap" in setup and f"keras=={keras.__version__}" in setup and "jax==" in setup
    assert "safetensors==" in setup and "tokenizers==" in setup  # the capstone's and the tokenizer's formats


@pytest.mark.course
def test_the_bundle_grades_at_the_hint_level_it_was_built_with(tmp_path):
    assert cli.main(["autograder", str(tmp_path / "autograder.zip"), "--hints", "locate"]) == 0
    with zipfile.ZipFile(tmp_path / "autograder.zip") as bundle:
        assert "--hints locate" in bundle.read("run_autograder").decode()
    with pytest.raises(ValueError, match="hints must be one of full, cause, locate"):
        autograder.build_bundle(tmp_path / "a.zip", hints="none")


def test_the_bundle_rejects_an_unknown_backend_and_a_non_zip(tmp_path):
    with pytest.raises(ValueError, match="backend must be one of"):
        autograder.build_bundle(tmp_path / "a.zip", backend="theano")
    with pytest.raises(ValueError, match="out_zip must name a .zip"):
        autograder.build_bundle(tmp_path / "a.tar")


GRADED = ("masking", "attention")
"""The exercises of the bundle `run_autograder` grades: those the hand-ins break. Gradescope's side
is the same for any choice; grading the whole course is the sandbox's and the seeds' tests."""


@pytest.mark.slow
@pytest.mark.skipif(not bubblewrap_works(), reason="the hostile hand-in needs the sandbox (bubblewrap) to score nothing")
def test_run_autograder_grades_like_pytest_grader_and_writes_gradescope_results(tmp_path):
    bundle = autograder.build_bundle(tmp_path / "autograder.zip", backend=keras.backend.backend(), exercises=GRADED)
    hand_ins = {
        "correct": submission(tmp_path / "correct", {}),
        "buggy": submission(tmp_path / "buggy", {WRONG_MASK[0]: [WRONG_MASK[1:]]}),
        "broken": submission(tmp_path / "broken", {"attention.py": [("def merge_heads(x):", "def merge_heads(x:")]}),
        "hostile": submission(tmp_path / "hostile", {WRONG_MASK[0]: [(WRONG_MASK[1], WRONG_MASK[2] + WALKS_UP)]}),
        "memory_bomb": submission(tmp_path / "memory_bomb", {WRONG_MASK[0]: [(WRONG_MASK[1], WRONG_MASK[2] + MEMORY_BOMB)]}),
    }
    scores = {}
    for name, folder in hand_ins.items():
        root = tmp_path / "autograder" / name
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(root / "source")  # as Gradescope does, run_autograder is copied beside it
        shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
        shutil.copytree(folder, root / "submission")
        environment = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
        status, output, peak = _run_measured(["bash", str(root / "run_autograder")], root, env=environment)
        assert status == 0, output[-3000:]
        assert peak < GRADER_PEAK_BYTES, f"{name}: the grader peaked at {peak / 2**30:.1f} GiB"
        results = json.loads((root / "results" / "results.json").read_text())
        check_gradescope_fields(results)
        assert results["execution_time"] > 0 and "Feedback for submission" in results["output"]
        scores[name] = results["score"]
    expected = {name: grade(tmp_path, "--submission", str(hand_ins[name]), exercises=GRADED)["total"]
                for name in ("correct", "buggy", "broken")}
    assert {name: scores[name] for name in expected} == expected
    total = sum(MAXIMA[exercise] for exercise in GRADED)
    assert expected["correct"] == total and expected["buggy"] < total and expected["broken"] < total
    assert scores["hostile"] == scores["buggy"]  # in the grader's own process its trick would win (test_sandbox)
    assert scores["memory_bomb"] <= scores["buggy"]


def test_without_bubblewrap_grading_warns_and_runs_apart_but_not_isolated(monkeypatch):
    from grader import sandbox
    from grader.remote import RemoteSubmission
    from keras_tx_tools.course import release

    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    with pytest.warns(sandbox.NotIsolatedWarning, match="NOT ISOLATED"):
        process = sandbox.StudentProcess.start(keras.backend.backend())
    try:
        assert not process.isolated
        submission = RemoteSubmission(process, release.repository_root() / "solutions")
        mask = submission.modules()["masking"].causal_mask(3)
        assert keras.ops.convert_to_numpy(mask).astype(int).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
        submission.close()
    finally:
        process.close()


@pytest.mark.course
def test_a_bundle_of_some_exercises_grades_only_those_and_gives_what_they_import(tmp_path):
    assert cli.main(["autograder", str(tmp_path / "week2.zip"), "--exercises", "attention"]) == 0
    with zipfile.ZipFile(tmp_path / "week2.zip") as bundle:
        names = set(bundle.namelist())
        bundle.extract("grader/registry.py", tmp_path)
    assert {name for name in names if name.startswith("grader/test_")} == {"grader/test_attention.py"}
    assert {name for name in names if name.startswith("solutions/")} >= {"solutions/masking.py", "solutions/attention.py"}
    assert "solutions/model.py" not in names and "grader/reference/model.npz" not in names
    course = load_course(tmp_path)
    assert (course.graded, course.given) == (("attention",), ("masking",))
