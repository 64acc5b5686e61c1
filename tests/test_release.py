"""The student release: everything to do the exercises and grade them, and no solution code."""

import json
import os
import re
import shutil
import subprocess
import sys

import keras
import pytest

from grader.registry import COURSE, load_course
from keras_tx_tools import cli
from keras_tx_tools.course import release, stubs

pytestmark = pytest.mark.course

ROOT = release.repository_root()
SOLUTIONS = ROOT / "solutions"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return release.build_release(tmp_path_factory.mktemp("release") / "bundle")


def _collapsed(text):
    """`text` with every run of whitespace made one space: indentation-blind comparison."""
    return " ".join(text.split())


def test_the_release_holds_exercises_lessons_grader_and_tools_but_no_solutions_library_or_instructor_code(bundle):
    for left_out in ("solutions", "keras_tx", "grader/instructor", "keras_tx_tools/course", *release.LIBRARY_TOOLS):
        assert not (bundle / left_out).exists(), left_out
    exercises = sorted(path.name for path in (bundle / "exercises").glob("*.py"))
    assert exercises == sorted(["__init__.py", *(exercise.file for exercise in COURSE)])
    assert "Lesson" in (bundle / "exercises" / "attention.py").read_text()
    assert (bundle / "grader" / "conftest.py").is_file() and list((bundle / "grader" / "reference").glob("*.npz"))
    assert (bundle / "keras_tx_tools" / "data" / "reversal.py").is_file()
    assert load_course(bundle).names == COURSE.names


def test_every_link_of_the_released_docs_leads_to_a_file_of_the_release(bundle):
    """The site's pages that are not files (the lessons, the grader's guide) link their files instead."""
    links = [(page, target.partition("#")[0]) for page in (bundle / "docs").rglob("*.md")
             for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()) if not re.match(r"[a-z]+:|#", target)]
    assert links
    assert [(page.name, target) for page, target in links if not (page.parent / target).exists()] == []
    students = (bundle / "docs" / "students.md").read_text()
    assert "](../README.md)" in students and "](../grader/README.md#for-students)" in students


def test_the_library_ships_only_when_asked_for(tmp_path):
    bundle = release.build_release(tmp_path / "bundle", exercises=["masking"], with_library=True)
    assert (bundle / "keras_tx" / "self_attention.py").is_file()
    assert all((bundle / tool).is_file() for tool in release.LIBRARY_TOOLS)


def test_a_release_of_some_exercises_gives_the_ones_they_import_and_grades_only_its_own(tmp_path):
    bundle = release.build_release(tmp_path / "bundle", exercises=["attention"])
    course = load_course(bundle)
    assert (course.graded, course.given) == (("attention",), ("masking",))
    assert sorted(path.name for path in (bundle / "exercises").glob("*.py")) == ["__init__.py", "attention.py", "masking.py"]
    given = (bundle / "exercises" / "masking.py").read_text()
    assert stubs.is_given_code(given) and "NotImplementedError" not in given and "BEGIN SOLUTION" not in given
    assert "NotImplementedError" in (bundle / "exercises" / "attention.py").read_text()
    assert sorted(path.name for path in (bundle / "grader").glob("test_*.py")) == ["test_attention.py"]
    assert [path.stem for path in (bundle / "grader" / "reference").glob("*.npz")] == ["attention"]
    readme = (bundle / "README.md").read_text()
    assert "| given | `exercises/masking.py` |" in readme and "| 3 | `exercises/attention.py` |" in readme  # numbered as its lesson
    assert "exercises/model.py" not in readme and "reads 0/30," in readme


def test_an_unknown_exercise_gets_one_error_naming_the_course(tmp_path, capsys):
    assert cli.main(["release", str(tmp_path / "bundle"), "--exercises", "attention,atention"]) == 1
    error = capsys.readouterr().err
    assert f"exercises must be some of {', '.join(COURSE.names)}; got 'atention'" in error
    assert len(error.strip().splitlines()) == 1 and not (tmp_path / "bundle").exists()


def test_no_file_of_the_release_holds_a_solution_body_or_marker(bundle):
    bodies = [
        _collapsed(body)
        for path in SOLUTIONS.glob("*.py")
        for body in re.findall(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", path.read_text(), re.DOTALL)
    ]
    assert len(bodies) >= 4
    for path in bundle.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="ignore")
            assert "BEGIN SOLUTION" not in text, path
            assert not any(body in _collapsed(text) for body in bodies), path


def test_solution_leaks_finds_a_body_copied_into_any_file(tmp_path):
    body = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", (SOLUTIONS / "masking.py").read_text(), re.DOTALL)
    (tmp_path / "notes.txt").write_text("def f():\n" + body.group(1))
    (tmp_path / "clean.py").write_text("x = 1\n")
    leaks = release.solution_leaks(tmp_path, SOLUTIONS)
    assert len(leaks) == 1 and leaks[0].startswith("notes.txt: the solution body")


def test_release_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert cli.main(["release", str(tmp_path)]) == 1
    assert "outdir must be a new or empty folder" in capsys.readouterr().err
    assert [path.name for path in tmp_path.iterdir()] == ["keep.txt"]


def _shadow_library(folder):
    """A ``keras_tx`` package in `folder` that fails to import: put first on ``PYTHONPATH``, it proves
    that the release's grader never reaches the repository's library."""
    (folder / "keras_tx").mkdir(parents=True)
    (folder / "keras_tx" / "__init__.py").write_text("raise ImportError('the release imported keras_tx')\n")
    return folder


@pytest.mark.slow
def test_pytest_grader_in_the_release_scores_the_stubs_0_and_the_solutions_full_marks(bundle, tmp_path):
    week2 = release.build_release(tmp_path / "week2", exercises=["attention"])
    shutil.copytree(SOLUTIONS, tmp_path / "answers")
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": str(_shadow_library(tmp_path / "shadow"))}
    runs = {  # name: (release, options)
        "stubs": (bundle, []),
        "solutions": (bundle, ["--submission", str(tmp_path / "answers")]),
        "week2 stubs": (week2, []),
        "week2 solution": (week2, ["--submission", str(tmp_path / "answers")]),
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "pytest", "grader", "-q", "-p", "no:cacheprovider", "--grade-timeout", "600",
             "--grade-json", str(tmp_path / f"{name}.json"), *options],  # four graders share the CPU: no check's time limit
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for name, (folder, options) in runs.items()
    }
    outputs = {name: process.communicate()[0] for name, process in processes.items()}
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in runs}
    full = sum(release.check_points(ROOT / "grader" / exercise.checks) for exercise in COURSE)
    assert reports["stubs"]["reference"].startswith("recorded"), outputs["stubs"][-2000:]
    assert (reports["stubs"]["total"], reports["stubs"]["max"]) == (0, full), outputs["stubs"][-2000:]
    assert outputs["stubs"].count("not attempted yet") >= len(COURSE), outputs["stubs"][-2000:]
    assert (reports["solutions"]["total"], reports["solutions"]["max"]) == (full, full), outputs["solutions"][-2000:]
    assert list(reports["week2 stubs"]["exercises"]) == ["attention"], outputs["week2 stubs"][-2000:]
    assert (reports["week2 stubs"]["total"], reports["week2 stubs"]["max"]) == (0, 30), outputs["week2 stubs"][-2000:]
    week2_solution = reports["week2 solution"]
    assert (week2_solution["total"], week2_solution["max"]) == (30, 30), outputs["week2 solution"][-2000:]


def _commands(markdown):
    """Every line of the ```bash blocks of `markdown`."""
    blocks = re.findall(r"```bash\n(.*?)```", markdown, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_release_readme_speaks_to_students_only(bundle):
    readme = (bundle / "README.md").read_text()
    order = [readme.index(f"exercises/{exercise.file}") for exercise in COURSE]
    assert order == sorted(order)
    assert f"reads 0/{sum(release.check_points(ROOT / 'grader' / exercise.checks) for exercise in COURSE):g}," in readme
    for topic in ("pytest grader", "--seed", "not attempted yet", "may not use", "from .masking import"):
        assert topic in readme
    for word in ("solution", "instructor", "benchmark", "grade-all", "release"):
        assert word not in readme.lower(), word
    from grader import screening

    for name in (*screening.REFUSED_MODULES, *screening.FORBIDDEN_NAMES):
        assert f"`{name}`" in readme or f".{name}`" in readme, f"the README does not forbid {name}"


@pytest.mark.slow
def test_every_command_of_the_release_readme_runs_in_the_release(bundle):
    """The set-up lines are those of the main README, which CI runs; every other line is run here."""
    commands = _commands((bundle / "README.md").read_text())
    main_readme = (release.repository_root() / "README.md").read_text()
    setup = [command for command in commands if "pip install" in command or "venv" in command]
    assert len(setup) == 2
    for command in setup:
        for step in command.split(" && "):
            assert step in main_readme, step
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    env.pop("KERAS_BACKEND", None)
    runs = {
        command: subprocess.Popen(
            ["bash", "-c", f"{command} -p no:cacheprovider"], cwd=bundle, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for command in commands
        if command not in setup
    }
    assert len(runs) >= 4
    for command, process in runs.items():
        output = process.communicate()[0]
        graded = re.search(r"pytest (grader\S*)", command)[1]  # the whole grader, or one exercise's checks
        assert process.returncode == 0 and f"reproduce this run with: pytest {graded} --seed" in output, (
            f"{command}:\n{output[-3000:]}"
        )


@pytest.mark.slow
def test_the_training_tools_of_the_release_run_without_the_library(bundle, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(_shadow_library(tmp_path / "shadow")), "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run([sys.executable, "-m", "keras_tx_tools", "train", "reverse", "--model", "exercises"],
                            cwd=bundle, env=env, capture_output=True, text=True)
    assert result.stderr.strip().splitlines()[-1].startswith("keras-tx train: error: exercises/"), result.stderr[-3000:]
    assert "NotImplementedError" in result.stderr and "Traceback" not in result.stderr
