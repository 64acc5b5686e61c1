"""The grader grades: full marks for the solutions, zero for the stubs, and a broken file costs
its exercise and those that import it. Grading runs in this process, on this process's backend."""

import doctest
import itertools
import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from keras_tx_tools.course import exports

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAXIMA = {"tokenizer": 20, "positional_embedding": 20, "masking": 20, "attention": 30, "model": 30, "training": 20,
          "sampling": 20, "generation": 20, "gpt2": 20}
TOTAL = sum(MAXIMA.values())
_reports = itertools.count()


def grade(tmp_path, *options, exercises=()):
    """Run ``pytest grader`` (or the checks of some exercises) in this process; return its JSON report.

    The seed is fixed: the same shapes in every grading let JAX reuse its compilations. The time
    limit of a check is generous, so that a busy machine cannot change a verdict (an interrupted
    TensorFlow can also spoil the checks after it).
    """
    report = tmp_path / f"report-{next(_reports)}.json"
    targets = [ROOT / "grader" / f"test_{exercise}.py" for exercise in exercises] or [ROOT / "grader"]
    exit_code = pytest.main([*map(str, targets), "-q", "-p", "no:cacheprovider", "--seed", "1",
                             "--grade-json", str(report), "--grade-timeout", "600", *options])
    assert exit_code == 0, f"grading did not complete (exit status {exit_code})"
    return json.loads(report.read_text())


def submission(tmp_path, patches):
    """A copy of the solutions with ``{file: [(old, new), ...]}`` applied; each old text must occur once."""
    folder = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, replacements in patches.items():
        path = folder / name
        source = path.read_text()
        for old, new in replacements:
            assert source.count(old) == 1, f"{old!r} should occur once in {name}"
            source = source.replace(old, new)
        path.write_text(source)
    return folder


def messages(report, exercise):
    return " | ".join(test["message"] for test in report["exercises"][exercise]["tests"])


@pytest.mark.slow  # the whole course, graded in this process: minutes on JAX
def test_solutions_score_full_marks(tmp_path):
    report = grade(tmp_path, "--solutions", "--reference", "live")
    assert {name: result["max"] for name, result in report["exercises"].items()} == MAXIMA
    assert (report["total"], report["max"]) == (TOTAL, TOTAL), report


def test_stubs_score_zero_and_say_not_attempted(tmp_path):
    report = grade(tmp_path)
    assert report["total"] == 0 and report["max"] == TOTAL
    outcomes = {test["outcome"] for result in report["exercises"].values() for test in result["tests"]}
    assert outcomes == {"not attempted"}


def test_an_untouched_stub_is_not_attempted_as_its_checks_would_find(tmp_path):
    """Untouched files skip their checks; with a helper added, every check runs and ends the same."""
    import ast

    from grader.submission import is_untouched_stub

    folder = tmp_path / "started"
    shutil.copytree(ROOT / "exercises", folder, ignore=shutil.ignore_patterns("__pycache__"))
    for exercise in MAXIMA:
        path = folder / f"{exercise}.py"
        assert is_untouched_stub(ast.parse(path.read_text()))
        assert not is_untouched_stub(ast.parse((ROOT / "solutions" / path.name).read_text()))
        path.write_text(path.read_text() + "\n\ndef helper():\n    return 0\n")
        assert not is_untouched_stub(ast.parse(path.read_text()))
    report = grade(tmp_path, "--submission", str(folder))
    assert report["total"] == 0
    outcomes = {test["outcome"] for result in report["exercises"].values() for test in result["tests"]}
    assert outcomes == {"not attempted"}


def test_a_check_waiting_on_another_unwritten_exercise_names_it(tmp_path):
    folder = submission(tmp_path, {})
    shutil.copy(ROOT / "exercises" / "model.py", folder / "model.py")  # training's last check trains model.py's GPT
    report = grade(tmp_path, "--submission", str(folder), exercises=["training"])
    [waiting] = [test for test in report["exercises"]["training"]["tests"] if test["outcome"] == "not attempted"]
    assert waiting["message"] == "not attempted yet: it runs your model.py (GPT.__init__), not written yet"
    assert report["exercises"]["training"]["points"] == MAXIMA["training"] - 2


@pytest.mark.slow  # the whole course, graded in this process: minutes on JAX
def test_recorded_reference_grades_solutions_fully(tmp_path):
    # The reversal checks never consult the reference; they run in the test above.
    report = grade(tmp_path, "--solutions", "--reference", "recorded", "-k", "not reversal")
    assert report["reference"].startswith("recorded")
    assert report["total"] == report["max"] == TOTAL - 6 - 2


def test_command_line_on_stubs_prints_the_table_and_exits_zero(tmp_path):
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pytest", "grader", "-p", "no:cacheprovider", "--reference", "recorded",
               "--seed", "7", "--hints", "cause", "--grade-json", str(report)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "reproduce this run with: pytest grader --seed 7 --hints cause\n" in result.stdout
    assert result.stdout.count("not attempted yet") >= len(MAXIMA)
    assert re.search(rf"^total +0/{TOTAL}$", result.stdout, re.MULTILINE), result.stdout[-2000:]
    assert json.loads(report.read_text())["seed"] == 7


def test_backend_all_grades_each_backend_in_its_own_process_and_prints_the_times(tmp_path):
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pytest", "grader", "-p", "no:cacheprovider", "--backend", "all",
               "--reference", "recorded", "--seed", "7", "-k", "causal_mask", "--grade-json", str(report)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"^graded in subprocesses: tensorflow [\d.]+ s, torch [\d.]+ s, jax [\d.]+ s$", result.stdout,
                     re.MULTILINE), result.stdout[-2000:]
    assert "no tests ran" not in result.stdout
    graded = json.loads(report.read_text())["backends"]
    assert {backend: list(graded[backend]["exercises"]) for backend in graded} == {
        backend: ["masking"] for backend in ("tensorflow", "torch", "jax")}


@pytest.mark.slow  # the whole course, graded in this process: minutes on JAX
def test_a_broken_file_costs_its_exercise_and_those_that_import_it(tmp_path):
    folder = submission(tmp_path, {
        "masking.py": [("def causal_mask(length):", "def causal_mask(length)")],
        "positional_embedding.py": [("import keras\n", "import keras\n\nprint('total 0/100: all tests PASSED')\n")],
    })
    report = grade(tmp_path, "--submission", str(folder), "-k", "not reversal")
    points = {name: result["points"] for name, result in report["exercises"].items()}
    # training.py imports nothing; its one check that trains model.py's GPT is left out by -k
    assert points == {**MAXIMA, "masking": 0, "attention": 0, "model": 0, "training": MAXIMA["training"] - 2,
                      "generation": 0, "gpt2": 0}
    assert "syntax error on line" in messages(report, "masking")
    for exercise in ("attention", "model"):
        assert f"{exercise}.py cannot be graded until masking.py loads: masking.py has a syntax error" in messages(
            report, exercise)


def test_a_forbidden_shortcut_costs_its_exercise(tmp_path):
    folder = submission(tmp_path, {
        "attention.py": [("import keras\n", "import keras\nfrom keras.layers import MultiHeadAttention\n")]})
    report = grade(tmp_path, "--submission", str(folder), "-k", "not reversal", exercises=["attention"])
    assert report["exercises"]["attention"]["points"] == 0
    assert "MultiHeadAttention" in messages(report, "attention")


def test_endless_loop_costs_one_check(tmp_path):
    folder = submission(tmp_path, {"attention.py": [("        if embed_dim % num_heads:\n",
                                                     "        while embed_dim % num_heads:\n            pass\n"
                                                     "        if embed_dim % num_heads:\n")]})
    report = grade(tmp_path, "--submission", str(folder), "--grade-timeout", "2", "-k", "indivisible or split",
                   exercises=["attention"])
    failed = {test["name"]: test["message"] for test in report["exercises"]["attention"]["tests"] if test["points"] == 0}
    assert list(failed) == ["test_self_attention_rejects_indivisible_width"]
    assert "took longer than 2 s" in failed["test_self_attention_rejects_indivisible_width"]


def test_a_held_alarm_waits_for_the_end_of_the_exchange():
    """The sandbox's command-and-reply exchanges are not cut in half by a check's time limit."""
    import time

    from grader.limits import TimeLimitExceeded, alarm_held, time_limit

    finished = []
    with pytest.raises(TimeLimitExceeded, match="took longer than 0.2 s"):
        with time_limit(0.2, "this check"):
            with alarm_held():
                time.sleep(0.5)
                finished.append(True)
            finished.append("after")  # never reached: the alarm rings as the hold ends
    assert finished == [True]


def test_exception_in_student_code_points_at_its_line(tmp_path):
    folder = submission(tmp_path, {"masking.py": [("    query_positions = ops.arange(length)[:, None]\n",
                                                   "    query_positions = ops.arange(length)[:, None]\n"
                                                   "    raise TypeError('oops')\n")]})
    report = grade(tmp_path, "--submission", str(folder), "-k", "causal", exercises=["masking"])
    line = next(number for number, text in enumerate((folder / "masking.py").read_text().splitlines(), 1) if "oops" in text)
    assert f"your code raised TypeError: oops (masking.py, line {line}: raise TypeError('oops'))" in messages(report, "masking")


def test_exception_raised_beyond_student_code_names_the_library(tmp_path):
    """An error from inside a library (PyTorch refusing a layer name with a dot, say) says so."""
    import json as library

    from grader.checks import describe_exception

    try:
        library.loads("{")
    except ValueError as error:
        description = describe_exception(error, tmp_path)
    assert description.endswith("(raised inside json, with no line of your files on the way: look at what your code gave it)"), description


def test_weights_read_before_the_layer_is_built_get_their_cause_and_fix(tmp_path):
    """Keras' own error names no cause a student can act on; the grader adds it."""
    import keras

    from grader.checks import failure_feedback

    try:
        keras.layers.Embedding(5, 3).embeddings
    except AttributeError as error:
        feedback = failure_feedback(error, tmp_path)
    assert feedback.where.startswith("your code raised AttributeError: ")  # each backend words it its own way
    assert "before it was built" in feedback.cause and feedback.fix.startswith("call the layer")


@pytest.mark.parametrize("exercise", MAXIMA)
def test_solution_docstring_examples_run(exercise, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from grader.submission import load_submission

    module = load_submission(ROOT / "solutions")[exercise]._module
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_a_file_that_does_not_load_is_named_by_hidden_checks_too(tmp_path):
    """A syntax error quotes no expected value: a hidden check shows it at every hint level."""
    folder = submission(tmp_path, {"attention.py": [("import keras\n", "import keras\n\ndef broken(:\n    pass\n")]})
    for hints in ("full", "locate"):
        report = grade(tmp_path, "--submission", str(folder), "--hints", hints, exercises=["attention"])
        hidden = [test for test in report["exercises"]["attention"]["tests"] if exports.is_hidden(test)]
        assert hidden and all("attention.py has a syntax error on line" in test["advice"] for test in hidden), hidden


def test_what_the_students_code_raised_in_its_sandbox_is_shown_by_hidden_checks_too(tmp_path):
    """The student's process never holds an expected value: a hidden check shows what it raised,
    here a function renamed, missed by the layer that calls it."""
    folder = submission(tmp_path, {"attention.py": [("def scaled_dot_product_attention(", "def attention_renamed(")]})
    report = grade(tmp_path, "--submission", str(folder), "--isolate", exercises=["attention"])
    hidden = {test["name"]: test for test in report["exercises"]["attention"]["tests"] if exports.is_hidden(test)}
    assert "defines no `scaled_dot_product_attention`" in hidden["test_attention_matches_reference"]["advice"]
    assert "NameError" in hidden["test_self_attention_matches_reference"]["advice"], hidden
