"""The student release: everything to do the exercises and grade them, and no solution code."""

import json
import os
import re
import shutil
import subprocess
import sys

import keras
import pytest

from keras_tx_tools import cli
from keras_tx_tools.course import release
from test_grader import COURSE_MAX

pytestmark = pytest.mark.course

SOLUTIONS = release.repository_root() / "solutions"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return release.build_release(tmp_path_factory.mktemp("release") / "bundle")


def _collapsed(text):
    """`text` with every run of whitespace made one space: indentation-blind comparison."""
    return " ".join(text.split())


def test_the_release_holds_exercises_lessons_grader_and_library_but_no_solutions(bundle):
    assert not (bundle / "solutions").exists()
    exercises = sorted(path.name for path in (bundle / "exercises").glob("*.py"))
    assert exercises == sorted(path.name for path in SOLUTIONS.glob("*.py"))
    assert "Lesson" in (bundle / "exercises" / "attention.py").read_text()
    assert (bundle / "grader" / "conftest.py").is_file() and list((bundle / "grader" / "reference").glob("*.npz"))
    assert (bundle / "keras_tx" / "self_attention.py").is_file()
    assert not (bundle / "keras_tx" / "course").exists()


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


@pytest.mark.slow
def test_pytest_grader_in_the_release_scores_the_stubs_0_and_the_solutions_100(bundle, tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "answers")
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    env.pop("PYTHONPATH", None)
    runs = {
        "stubs": [],
        "solutions": ["--submission", str(tmp_path / "answers")],
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "pytest", "grader", "-q", "-p", "no:cacheprovider",
             "--grade-json", str(tmp_path / f"{name}.json"), *options],
            cwd=bundle, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for name, options in runs.items()
    }
    outputs = {name: process.communicate()[0] for name, process in processes.items()}
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in runs}
    assert reports["stubs"]["reference"].startswith("recorded"), outputs["stubs"][-2000:]
    assert (reports["stubs"]["total"], reports["stubs"]["max"]) == (0, COURSE_MAX), outputs["stubs"][-2000:]
    assert (reports["solutions"]["total"], reports["solutions"]["max"]) == (COURSE_MAX, COURSE_MAX), outputs["solutions"][-2000:]


def _commands(markdown):
    """Every line of the ```bash blocks of `markdown`."""
    blocks = re.findall(r"```bash\n(.*?)```", markdown, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_release_readme_speaks_to_students_only(bundle):
    readme = (bundle / "README.md").read_text()
    for exercise in ("positional_embedding", "masking", "attention", "model"):
        assert f"exercises/{exercise}.py" in readme
    order = [readme.index(f"exercises/{name}.py") for name in ("positional_embedding", "masking", "attention", "model")]
    assert order == sorted(order)
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
        assert process.returncode == 0 and "reproduce this run with: pytest grader --seed" in output, (
            f"{command}:\n{output[-3000:]}"
        )
