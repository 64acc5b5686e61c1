"""Batch grading: screening, exports, and a whole synthetic class graded by `keras-tx grade-all`."""

import ast
import concurrent.futures
import csv
import json
import pathlib
import re
import shutil
import subprocess
import sys
import time
import zipfile

import pytest

import grader_that_dies
from grader.screening import forbidden_imports
from keras_tx_tools import cli
from keras_tx_tools.course import autograder, batch, exports, release, stubs, summary
from keras_tx_tools.course.batch import ERROR, GRADED, TIMEOUT, StudentGrade
from grader.registry import COURSE
from test_grader_variants import MISTAKES, representatives

pytestmark = pytest.mark.course
# These course tests run once, not per backend: the class is graded, sandboxed, on PyTorch, the fastest here.
CLASS_BACKEND = "torch"


# --- screening -------------------------------------------------------------------------------


def test_forbidden_imports_names_each_one_with_its_line():
    source = (
        "import numpy as np\n"
        "import keras\n"
        "from keras_tx.attention import scaled_dot_product_attention\n"
        "def f():\n"
        "    import subprocess\n"
        "    return __import__('o' + 's')\n"
    )
    findings = forbidden_imports(source)
    assert findings == [
        "line 3: keras_tx.attention (the reference implementation)",
        "line 5: subprocess (the operating system)",
        "line 6: __import__ (imports a module chosen at run time)",
    ]


def test_forbidden_imports_reports_dynamic_imports_and_code_but_not_keras_methods():
    source = (
        "import importlib\n"
        "model.compile(optimizer='adam')\n"
        "_os = __builtins__['__imp' + 'ort__']('o' + 's')\n"
        "_sys = importlib.import_module('s' + 'ys')\n"
        "run, code = exec, compile('1', 'f', 'eval')\n"
        "value = eval('1 + 1')\n"
        "_json = builtins.__import__('json')\n"
    )
    assert forbidden_imports(source) == [
        "line 1: importlib (the interpreter's internals)",
        "line 3: __builtins__ (reaches the built-ins, __import__ among them)",
        "line 4: import_module (imports a module chosen at run time)",
        "line 5: compile (runs code chosen at run time)",
        "line 5: exec (runs code chosen at run time)",
        "line 6: eval (runs code chosen at run time)",
        "line 7: __import__ (imports a module chosen at run time)",
    ]
    solutions = release.repository_root() / "solutions"
    assert [finding for path in solutions.glob("[!_]*.py") for finding in forbidden_imports(path.read_text())] == []


def test_forbidden_imports_accepts_allowed_modules_and_unparsable_files():
    assert forbidden_imports("import os\n", allowed={"os"}) == []
    assert forbidden_imports("def broken(:\n") == []


# --- exports and summary ---------------------------------------------------------------------


def _tests(*entries):
    keys = ("name", "points", "max", "hidden", "message", "advice")
    return [{**dict(zip(keys, entry)), "outcome": "passed" if entry[1] == entry[2] else "failed"} for entry in entries]


GRADES = [
    StudentGrade(
        "ada",
        GRADED,
        {
            "attention": {"points": 3, "max": 5, "tests": _tests(
                ("test_public_shape", 3, 3, False, ""),
                ("test_secret_seed_1234", 0, 2, True, "expected 0.8311 at index (0, 2) — the residual is missing",
                 "the residual is missing"),
            )},
            "masking": {"points": 5, "max": 5, "tests": _tests(("test_causal", 5, 5, False, ""))},
        },
        findings=["attention.py line 1: os (the operating system)"],
    ),
    StudentGrade("bob", TIMEOUT, message="grading was stopped after the time limit of 60 s"),
]


def test_feedback_shows_public_details_and_hides_hidden_test_internals(tmp_path):
    exports.write_feedback(GRADES, tmp_path)
    ada = (tmp_path / "ada.txt").read_text()
    assert "test_public_shape (3 / 3)" in ada and "attention: 3 / 5" in ada and "Total: 8 / 10" in ada
    assert "[failed] hidden test (0 / 2): the residual is missing" in ada  # the cause, never the values
    assert "secret" not in ada and "0.8311" not in ada
    assert "os (the operating system)" in ada
    assert "timeout" in (tmp_path / "bob.txt").read_text()


def test_csv_has_points_per_exercise_total_and_status(tmp_path):
    exports.write_csv(GRADES, tmp_path / "grades.csv")
    rows = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert [(row["student"], row["attention"], row["masking"], row["total"], row["max"], row["status"])
            for row in rows] == [("ada", "3", "5", "8", "10", "graded"), ("bob", "0", "0", "0", "10", "timeout")]
    assert rows[0]["forbidden_imports"].startswith("attention.py line 1: os")


def test_gradescope_results_show_hidden_tests_only_after_the_due_date(tmp_path):
    exports.write_gradescope(GRADES, tmp_path)
    results = json.loads((tmp_path / "ada" / "results.json").read_text())
    assert results["score"] == 8
    hidden = [test for test in results["tests"] if test["visibility"] != "visible"]
    assert [(test["visibility"], test["score"], test["max_score"]) for test in hidden] == [("after_due_date", 0, 2)]
    assert "secret" not in json.dumps([test for test in results["tests"] if test["visibility"] == "visible"])
    assert results["output"] == "attention: [failed] hidden test (0 / 2): the residual is missing"
    assert "secret" not in results["output"] and "0.8311" not in results["output"]
    assert sum(test["max_score"] for test in results["tests"]) == 10


def test_summary_counts_statuses_and_draws_the_histogram(tmp_path):
    text = summary.summarize(GRADES, max_points=10)
    assert text.splitlines()[0] == "2 submissions: 1 graded, 0 failed to run, 1 timed out"
    assert " 80-89%    1 #" in text and "  0- 9%    1 #" in text
    summary.plot_histogram(GRADES, 10, tmp_path / "scores.png")
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- hint levels ----------------------------------------------------------------------------


def test_a_hand_in_is_graded_at_the_hint_level_asked_for_and_an_unknown_level_is_refused(tmp_path):
    arguments = []

    def run(given, **_):  # stands in for pytest: notes what it was asked, grades nothing
        arguments.extend(given)
        return ""

    batch.grade_submission(SOLUTIONS, grading_root=release.repository_root(), backend=CLASS_BACKEND,
                           hints="cause", run=run)
    assert arguments[arguments.index("--hints") + 1] == "cause"
    with pytest.raises(ValueError, match="hints must be one of full, cause, locate; got 'all'"):
        batch.grade_submission(SOLUTIONS, grading_root=release.repository_root(), backend=CLASS_BACKEND,
                               hints="all", run=run)


# --- a whole synthetic class, graded by `keras-tx grade-all` ---------------------------------

SOLUTIONS = release.repository_root() / "solutions"

ALWAYS_EQUAL = '''

class _AlwaysEqual:
    """Claims to equal anything: a grader that trusts == gives it full marks."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def causal_mask(length):
    return _AlwaysEqual()
'''

GAMING_FILES = {
    # Each of these would make every test pass if the grader loaded it.
    "conftest.py": (
        "import pytest\n\n"
        "@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n"
        "    report = outcome.get_result()\n"
        "    report.outcome = 'passed'\n"
        "    report.longrepr = None\n"
    ),
    "pytest.ini": "[pytest]\naddopts = -p no:grader --co\n",
    "sitecustomize.py": "import builtins\nbuiltins.print('PASSED')\n",
    "__init__.py": "print('100 passed, 0 failed: PASSED')\n",
}

SNOOP = '''

import importlib.util as _util
import os as _os
import pathlib as _pathlib
import sys as _sys


def _reachable_solutions():
    \"\"\"The ways to the solutions the grading process was handed: cwd, sys.path, environment, import.\"\"\"
    cwd = _pathlib.Path.cwd()
    places = [*cwd.parents, cwd, *map(_pathlib.Path, _sys.path), *map(_pathlib.Path, _os.environ.values())]
    found = [str(place) for place in places if place.is_absolute() and (place / "solutions").is_dir()]
    return found + (["import solutions"] if _util.find_spec("solutions") else [])


if _reachable_solutions():
    raise ImportError(f"the solutions are within reach: {_reachable_solutions()}")
'''

GRADED_EXERCISES = ("positional_embedding", "masking", "attention")
"""The exercises graded together in the whole-class test; the model exercise, whose checks train a GPT, is graded on its own below."""


def _student_name(mistake):
    """A folder name for the student who makes `mistake`: "no 1/sqrt(d) scaling" -> "no_1_sqrt_d_scaling"."""
    return re.sub(r"[^a-z0-9]+", "_", mistake.lower()).strip("_")


# Each synthetic student: ({file: [(solution text, replacement), ...]} or "stubs", extra files,
# expectation). Expectations: "full" (every point), ("loses", exercise) (that exercise loses
# points; every exercise that does not import it keeps all of them), or "zero".
CLASS = {
    "correct": ({}, {}, "full"),
    # A student for each of the first three classic mistakes of these exercises in the grader's own table.
    **{_student_name(mistake): ({file: patches}, {}, ("loses", file.removesuffix(".py")))
       for mistake, (file, patches, _, _) in MISTAKES.items()
       if file.removesuffix(".py") in GRADED_EXERCISES and mistake in representatives(3)},
    "infinite_loop": ({"masking.py": [
        ("    query_positions = ops.arange(length)[:, None]", "    while True:\n        pass")]},
        {}, ("loses", "masking")),  # each check that loops runs out of time and fails; the rest are graded
    "memory_hog": ({"attention.py": [
        ("    depth = ops.cast(", "    hog = [b'x' * 2**28 for _ in range(64)]  # 16 GiB, every byte written\n"
                                  "    depth = ops.cast(")]},
        {}, ("loses", "attention")),
    "syntax_error": ({"attention.py": [("def merge_heads(x):", "def merge_heads(x:")]},
                     {}, ("loses", "attention")),
    "games_the_runner": ("stubs", GAMING_FILES, "zero"),
    "always_equal": ({"masking.py": [("\ndef padding_mask(", ALWAYS_EQUAL + "\n\ndef padding_mask(")]},
                     {}, ("loses", "masking")),
    "copies_the_library": ({"attention.py": [
        ("from .masking import apply_mask", "from .masking import apply_mask\nfrom keras_tx.attention import *")]},
        {}, ("loses", "attention")),
    "snoops_for_solutions": ({"masking.py": [("\ndef causal_mask(", SNOOP + "\n\ndef causal_mask(")]}, {}, "full"),
}


def _make_student(folder, patches, extra_files):
    """Write a submission: the solutions with `patches` applied (or the stubs), plus `extra_files`."""
    folder.mkdir(parents=True)
    for solution in SOLUTIONS.glob("[!_]*.py"):
        source = solution.read_text()
        if patches == "stubs":
            source = stubs.strip_solutions(source)
        else:
            for old, new in patches.get(solution.name, []):
                assert old in source, f"{solution.name} no longer contains {old!r}; update the test"
                source = source.replace(old, new)
        (folder / solution.name).write_text(source)
    for name, text in extra_files.items():
        (folder / name).write_text(text)


def _importers(exercise):
    """The exercises whose solution imports `exercise`, directly or through another."""
    imports = {path.stem: {node.module for node in ast.walk(ast.parse(path.read_text()))
                           if isinstance(node, ast.ImportFrom) and node.level}
               for path in SOLUTIONS.glob("[!_]*.py")}
    found, changed = {exercise}, True
    while changed:
        new = {name for name, modules in imports.items() if modules & found} - found
        found |= new
        changed = bool(new)
    return found


@pytest.mark.slow
def test_a_whole_class_is_graded_in_parallel_with_every_score_right(tmp_path, capsys):
    submissions = tmp_path / "submissions"
    for student, (patches, extra_files, _) in CLASS.items():
        _make_student(submissions / student, patches, extra_files)
    (submissions / "handed_in_nothing").mkdir()
    bundle = release.build_release(tmp_path / "release")
    out = tmp_path / "out"
    status = cli.main([
        "grade-all", str(submissions), "--backend", CLASS_BACKEND, "--jobs", "2",
        "--exercises", ",".join(GRADED_EXERCISES), "--timeout", "90", "--memory", "3",
        "--release", str(bundle), "--out", str(out),
        "--gradescope", str(out / "gradescope"), "--plot", str(out / "scores.png"), "--no-progress",
    ])
    printed = capsys.readouterr().out
    assert status == 0

    rows = {row["student"]: row for row in csv.DictReader(open(out / "grades.csv"))}
    assert set(rows) == {*CLASS, "handed_in_nothing"}
    exercises = [name for name in rows["correct"] if name not in
                 ("student", "total", "max", "status", "isolated", "forbidden_imports", "notes")]
    correct = rows["correct"]
    assert correct["status"] == "graded" and correct["total"] == correct["max"] != "0"
    full = {name: correct[name] for name in exercises}
    for student, (_, _, expected) in CLASS.items():
        row = rows[student]
        points = {name: row[name] for name in exercises}
        if expected == "full":
            assert (row["status"], points) == ("graded", full), student
        elif expected == "zero":
            assert (row["status"], row["total"]) == ("graded", "0"), student
        else:
            broken = expected[1]
            spared = set(exercises) - _importers(broken)
            assert row["status"] == "graded", student
            assert float(points[broken]) < float(full[broken]), student
            assert {name: points[name] for name in spared} == {name: full[name] for name in spared}, student
    assert rows["handed_in_nothing"]["status"] == "failed"
    assert "keras_tx.attention (the reference implementation)" in rows["copies_the_library"]["forbidden_imports"]
    assert "os (the operating system)" in rows["snoops_for_solutions"]["forbidden_imports"]
    assert rows["correct"]["forbidden_imports"] == ""

    for student in CLASS:
        _assert_feedback_hides_hidden_tests(out, student)
    assert (out / "scores.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((out / "run.json").read_text())  # the seed every hand-in was graded with
    assert f"backend {CLASS_BACKEND}, seed {record['seed']}," in (out / "logs" / "correct.log").read_text()
    assert f"--exercises {','.join(GRADED_EXERCISES)} --timeout 90 --memory 3 --release {bundle}" in record["command"]
    assert f" --seed {record['seed']} --out {out} " in record["command"]
    exercise_files = " ".join(f"grader/test_{name}.py" for name in GRADED_EXERCISES)  # the student's reproduce line
    assert f"reproduce this run with: pytest {exercise_files} --seed {record['seed']}" in (out / "logs" / "correct.log").read_text()
    assert f"{len(CLASS) + 1} submissions: {len(CLASS)} graded, 1 failed to run, 0 timed out" in printed


def _assert_feedback_hides_hidden_tests(out, student):
    """Feedback and Gradescope results show public tests by name, hidden ones without name or message
    (Gradescope shows them after the due date)."""
    report = out / "logs" / f"{student}.json"
    if not report.exists():  # not graded: there are no test results to show or hide
        return
    results = json.loads((out / "gradescope" / student / "results.json").read_text())
    visible = [test for test in results["tests"] if test["visibility"] == "visible"]
    shown = (out / "feedback" / f"{student}.txt").read_text() + results["output"] + json.dumps(visible)
    tests = [test for exercise in json.loads(report.read_text()).values() for test in exercise["tests"]]
    public_messages = {test["message"] for test in tests if not exports.is_hidden(test)}
    for test in tests:
        if exports.is_hidden(test):
            assert test["name"] not in shown, (student, test["name"])
            if test["message"] and test["message"] not in public_messages:
                assert test["message"] not in shown, (student, test["name"])
        else:
            assert test["name"] in shown, (student, test["name"])


# The model exercise, graded on its own: the first six of its classic mistakes in the grader's table.
MODEL_CLASS = {
    "correct": {},
    **{_student_name(mistake): {file: patches} for mistake, (file, patches, _, _) in MISTAKES.items()
       if file == "model.py" and mistake in representatives(6)},
}


@pytest.mark.slow
def test_the_model_exercise_of_a_class_is_graded_with_every_mistake_caught(tmp_path):
    submissions = tmp_path / "submissions"
    for student, patches in MODEL_CLASS.items():
        _make_student(submissions / student, patches, {})
    out = tmp_path / "out"
    status = cli.main([
        "grade-all", str(submissions), "--backend", CLASS_BACKEND, "--jobs", "2",
        "--exercises", "model", "--timeout", "120", "--memory", "3",
        "--release", str(release.build_release(tmp_path / "release")), "--out", str(out), "--no-progress",
    ])
    assert status == 0
    rows = {row["student"]: row for row in csv.DictReader(open(out / "grades.csv"))}
    assert rows["correct"]["status"] == "graded" and float(rows["correct"]["model"]) == float(rows["correct"]["max"]) > 0
    for student in set(MODEL_CLASS) - {"correct"}:
        assert rows[student]["status"] == "graded", student
        assert float(rows[student]["model"]) < float(rows["correct"]["model"]), student


# --- the grader's failure is never the student's ---------------------------------------------


@pytest.mark.slow
def test_a_grader_that_dies_costs_only_the_hand_in_that_killed_it(tmp_path):
    students = [tmp_path / name for name in ("ada", "bob", "cy", "kills_its_grader", "dee")]
    grades = batch._grade_in_pools(sorted(students), 2, grader_that_dies.grade, grader_that_dies.warm_up)
    assert [(grade.student, grade.status) for grade in grades] == [
        ("ada", GRADED), ("bob", GRADED), ("cy", GRADED), ("dee", GRADED), ("kills_its_grader", ERROR)]
    assert "died while grading this hand-in" in grades[-1].message


def _fake_grader(outcomes):
    """A `grade_submission` run that writes a report whose one check has the next of `outcomes`."""
    outcomes = iter(outcomes)

    def run(arguments, **_):
        outcome = next(outcomes)
        test = {"name": "test_causal_mask", "points": 0, "max": 5, "outcome": outcome, "message": ""}
        if outcome == "error":
            test["message"] = "the grader could not run this check: the process for students' code did not fork"
        report = {"isolation": "sandboxed", "exercises": {"masking": {"points": 0, "max": 5, "tests": [test]}}}
        pathlib.Path(arguments[arguments.index("--grade-json") + 1]).write_text(json.dumps(report))
        return f"graded: {outcome}"

    return run


def test_a_warm_grader_freezes_what_it_keeps_once_it_has_graded_its_first_hand_in():
    """A warm grader's collections skip what it holds for good, and its first hand-in brought in."""
    code = ("import gc; from keras_tx_tools.course import batch; before = gc.get_freeze_count(); "
            "batch.run_pytest_here(['--version']); first = gc.get_freeze_count(); "
            "batch.run_pytest_here(['--version']); print(before, first, gc.get_freeze_count())")
    counts = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, first, second = map(int, counts.split())
    assert before == 0 and first > 10_000 and second <= first  # nothing frozen after the first


def test_a_check_the_grader_could_not_run_is_regraded_then_marked_error_never_a_zero(tmp_path):
    student = tmp_path / "ada"
    student.mkdir()
    (student / "masking.py").write_text("")
    root = release.repository_root()
    once = batch.grade_submission(student, grading_root=root, backend="torch", exercises=["masking"],
                                  run=_fake_grader(["error", "failed"]))
    assert (once.status, once.log) == (GRADED, "graded: failed")
    twice = batch.grade_submission(student, grading_root=root, backend="torch", exercises=["masking"],
                                   run=_fake_grader(["error", "error"]))
    assert twice.status == ERROR and "did not fork" in twice.message and "regrade" in twice.message
    assert "GRADER ERROR" in exports.gradescope_results(twice)["output"]
    assert "GRADER ERROR" in exports.feedback_text(twice)
    exports.write_csv([twice], tmp_path / "grades.csv")
    assert next(csv.DictReader(open(tmp_path / "grades.csv")))["status"] == "error"


# --- a subset of the exercises ----------------------------------------------------------------


def test_an_unknown_exercise_fails_before_grading_with_one_line_naming_the_course(tmp_path, capsys):
    (tmp_path / "submissions" / "ada").mkdir(parents=True)
    status = cli.main(["grade-all", str(tmp_path / "submissions"), "--exercises", "attention,masks",
                       "--backend", CLASS_BACKEND, "--out", str(tmp_path / "out"), "--no-progress"])
    error = capsys.readouterr().err
    assert status == 1 and len(error.strip().splitlines()) == 1
    assert f"exercises must be some of {', '.join(COURSE.names)}; got 'masks'" in error
    assert not (tmp_path / "out").exists()


def test_a_graded_folder_is_kept_unless_overwrite_and_run_json_says_how_to_grade_again(tmp_path, monkeypatch, capsys):
    """A second run into the same --out stops before grading; with --overwrite it replaces the
    gradebook, feedback and logs; run.json holds the seed the class was graded with."""
    used = []
    monkeypatch.setattr(batch, "grade_all", lambda *args, **options: used.append(options) or GRADES)
    (tmp_path / "submissions" / "ada").mkdir(parents=True)
    out = tmp_path / "out"
    command = ["grade-all", str(tmp_path / "submissions"), "--backend", CLASS_BACKEND, "--out", str(out),
               "--exercises", "masking,attention", "--hints", "cause", "--no-progress"]
    assert cli.main(command) == 0
    record = json.loads((out / "run.json").read_text())
    seed = used[0]["seed"]
    assert isinstance(seed, int) and (record["backend"], record["seed"], record["hints"]) == (CLASS_BACKEND, seed, "cause")
    assert record["exercises"] == ["masking", "attention"] and record["statuses"] == {"graded": 1, "timeout": 1}
    assert record["command"] == (f"keras-tx grade-all {tmp_path / 'submissions'} --backend {CLASS_BACKEND} "
                                 f"--seed {seed} --out {out} --exercises masking,attention --hints cause")
    assert record["command"] in capsys.readouterr().out
    (out / "feedback" / "someone_gone.txt").write_text("an earlier run's student")
    gradebook = (out / "grades.csv").read_text()

    assert cli.main(command) == 1
    error = capsys.readouterr().err
    assert f"already holds a gradebook (graded {record['date']} on {CLASS_BACKEND}, seed {seed})" in error
    assert "--overwrite" in error and len(used) == 1  # refused before grading
    assert (out / "grades.csv").read_text() == gradebook and (out / "feedback" / "someone_gone.txt").exists()

    assert cli.main([*command, "--overwrite", "--seed", "7", "--timeout", "90"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == used[1]["seed"] == 7 and record["command"].endswith("--hints cause --timeout 90")
    assert sorted(path.name for path in (out / "feedback").iterdir()) == ["ada.txt", "bob.txt"]


@pytest.mark.parametrize("option, value, error", [
    ("--out", "a_file", "--out must be a folder; "),
    ("--seed", "-5", "argument --seed: seed must be an integer from 0 to 4294957295, got '-5'"),
    ("--seed", "1.5", "argument --seed: seed must be an integer from 0 to 4294957295, got '1.5'"),
])
def test_a_wrong_out_or_seed_stops_grade_all_before_grading(option, value, error, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch, "grade_all", lambda *args, **options: pytest.fail("graded"))
    (tmp_path / "submissions" / "ada").mkdir(parents=True)
    (tmp_path / "a_file").write_text("")
    monkeypatch.chdir(tmp_path)
    try:
        status = cli.main(["grade-all", "submissions", "--backend", CLASS_BACKEND, option, value, "--no-progress"])
    except SystemExit as stop:  # argparse's own errors
        status = stop.code
    assert status != 0 and error in capsys.readouterr().err


def test_the_library_refuses_a_seed_numpy_cannot_take(tmp_path):
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 4294957295, got -1"):
        batch.grade_all(tmp_path, grading_root=release.repository_root(), backend=CLASS_BACKEND, seed=-1)


@pytest.mark.slow
def test_a_hand_in_of_one_exercise_is_graded_with_the_given_code_of_what_it_imports(tmp_path):
    """Graded by the repository, by a release of that exercise, and by its Gradescope autograder."""
    hand_in = tmp_path / "ada"
    hand_in.mkdir()
    shutil.copy(release.repository_root() / "solutions" / "attention.py", hand_in)  # no masking.py
    week2 = release.build_release(tmp_path / "week2", exercises=["attention"])
    with zipfile.ZipFile(autograder.build_bundle(tmp_path / "week2.zip", exercises=["attention"])) as bundle:
        bundle.extractall(tmp_path / "gradescope")
    roots = {"repository": (release.repository_root(), ["attention"]), "release": (week2, None),
             "autograder": (tmp_path / "gradescope", None)}
    with concurrent.futures.ThreadPoolExecutor(len(roots)) as pool:
        grades = dict(zip(roots, pool.map(lambda root: batch.grade_submission(
            hand_in, grading_root=root[0], backend=CLASS_BACKEND, exercises=root[1], seed=0), roots.values())))
    for name, grade in grades.items():
        assert grade.status == GRADED and list(grade.exercises) == ["attention"], (name, grade.message, grade.log[-2000:])
        assert (grade.total, grade.exercises["attention"]["max"]) == (30, 30), (name, grade.log[-2000:])


def test_a_class_folder_given_relative_to_the_working_folder_is_graded(tmp_path, monkeypatch):
    hand_in = tmp_path / "class" / "ada"
    hand_in.mkdir(parents=True)
    shutil.copy(release.repository_root() / "solutions" / "masking.py", hand_in)
    monkeypatch.chdir(tmp_path)
    [grade] = batch.grade_all("class", grading_root=release.repository_root(), backend=CLASS_BACKEND, progress=False)
    assert grade.status == GRADED and grade.total == grade.exercises["masking"]["max"] > 0, (grade.message, grade.log[-2000:])
    # The log's reproduce line names the hand-in's folder, not the copy graded and deleted since.
    # and keeps the sandbox and the backend: a hand-in's code never runs outside the sandbox by copy and paste.
    assert f"--submission {hand_in.resolve()} --backend {CLASS_BACKEND} --isolate" in grade.log, grade.log[-2000:]


def test_a_class_on_jax_fills_the_compilation_cache_while_its_graders_warm_up(tmp_path, monkeypatch):
    """The fill runs the selected exercises' checks on the solutions with the batch's seed, on JAX only,
    and only where there are solutions (a release has none); a grader waits until it has ended."""
    runs = []

    def start(arguments, **options):  # a stand-in for the solutions' grading that takes a second
        runs.append((arguments, options))
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"], pass_fds=options["pass_fds"])

    monkeypatch.setattr(batch, "start_pytest_process", start)
    root = release.repository_root()
    with batch.compilation_cache_filling(root, "jax", 1234, ["masking", "attention"]) as filling:
        started = time.monotonic()
        batch.wait_for_filling(filling)
        assert time.monotonic() - started > 0.5
    [(arguments, options)] = runs
    assert arguments[:2] == ["grader/test_masking.py", "grader/test_attention.py"]
    assert "--solutions" in arguments and arguments[arguments.index("--seed") + 1] == "1234"
    assert (options["grading_root"], options["backend"]) == (root, "jax")
    without_solutions = tmp_path / "release"
    (without_solutions / "grader").mkdir(parents=True)
    for folder, backend in ((root, "torch"), (root, "tensorflow"), (without_solutions, "jax")):
        with batch.compilation_cache_filling(folder, backend, 1234) as filling:
            assert filling is None
    monkeypatch.setenv("KERAS_TX_JAX_CACHE", "none")
    with batch.compilation_cache_filling(root, "jax", 1234) as filling:
        assert filling is None
    assert len(runs) == 1


@pytest.mark.slow
def test_filling_the_compilation_cache_leaves_the_checks_programs_in_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_TX_JAX_CACHE", str(tmp_path / "cache"))
    with batch.compilation_cache_filling(release.repository_root(), "jax", 0, ["masking"]) as filling:
        batch.wait_for_filling(filling)
        assert len(list((tmp_path / "cache").iterdir())) > 10  # one file per program
