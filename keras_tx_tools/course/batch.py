"""Grade a whole class: every submission in its own isolated, limited process.

Each student's hand-in is graded by ``pytest grader`` in a fresh temporary
directory that holds only what grading needs: a private copy of the
solution-free grading bundle (``grader/``, ``keras_tx/``, ``exercises/``, as
built by :mod:`keras_tx_tools.course.release`) and the student's four exercise
files — nothing else from the hand-in. So a submitted ``conftest.py``,
``pytest.ini`` or ``sitecustomize.py`` is never even copied, let alone
loaded; the solutions are not on disk near the student's process (the bundle
grades against recorded reference outputs); and a student who tampers with
the bundle spoils only their own copy.

The score is read from the report the grader writes with ``--grade-json`` to
a randomly named file, never from what the process prints: a submission that
prints ``PASSED`` gains nothing. A process that runs past the wall-clock
limit is killed with everything it started and marked ``timeout``; one that
crashes or leaves no report is marked ``failed``; either way the batch goes
on and only that student is affected. Memory is capped per process (see
:mod:`keras_tx_tools.course.sandbox`), so a memory hog fails its own test with a
``MemoryError`` instead of starving its neighbours.

A student directory holds the exercise files (``attention.py``, ...) or the
nbgrader notebooks (``attention.ipynb``, ...) anywhere below it, the
shallowest copy winning; for each exercise a ``.py`` file wins over a
notebook.

Example (a bundle from ``keras-tx release``, one folder per student)::

    grades = grade_all("submissions/", grading_root="release/", backend="jax", jobs=4)
    for grade in grades:
        print(grade.student, grade.status, grade.total)
"""

import ast
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import re
import secrets
import shutil
import sys
import tempfile

from keras_tx_tools.course import notebooks
from keras_tx_tools.course.sandbox import run_limited
from keras_tx_tools.course.screening import forbidden_imports, imported_modules

GRADED, FAILED, TIMEOUT = "graded", "failed", "timeout"
"""The status of a graded submission: graded normally, no report, or out of time."""

BUNDLE_PARTS = ("grader", "keras_tx", "exercises")
"""What a grading root must hold, copied afresh for every submission."""

PASSED_ENVIRONMENT = (
    "PATH",
    "LANG",
    "LC_ALL",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
)
"""Environment variables a grading process inherits; everything else is dropped."""


@dataclasses.dataclass
class StudentGrade:
    """The grading of one student's submission.

    Attributes:
        student: the name of the student's folder.
        status: `GRADED`, `FAILED` or `TIMEOUT`.
        exercises: the grader's report per exercise, ``{name: {"points",
            "max", "tests"}}``; empty unless `status` is `GRADED`.
        message: why the submission was not graded (empty when it was).
        findings: forbidden imports found in the submitted files.
        log: the grader's full output, for the instructor's eyes only.
    """

    student: str
    status: str
    exercises: dict = dataclasses.field(default_factory=dict)
    message: str = ""
    findings: list = dataclasses.field(default_factory=list)
    log: str = ""

    @property
    def total(self):
        """Points earned over all exercises (0 when not graded)."""
        return sum(report["points"] for report in self.exercises.values())

    def points(self, exercise):
        """Points earned on `exercise` (0 when not graded)."""
        return self.exercises.get(exercise, {}).get("points", 0)


def course_order(folder):
    """The exercise modules of `folder`, ordered by the number in their title ("Exercise 3: ...")."""

    def number(path):
        title = re.match(r"\s*Exercise (\d+)", ast.get_docstring(ast.parse(path.read_text())) or "")
        return (int(title.group(1)) if title else sys.maxsize), path.name

    return sorted((path for path in pathlib.Path(folder).glob("*.py") if not path.name.startswith("_")), key=number)


def exercise_names(grading_root):
    """The exercise names of a grading bundle, in course order: the modules of its ``exercises/``."""
    return [path.stem for path in course_order(pathlib.Path(grading_root) / "exercises")]


def select_exercises(grading_root, exercises=None):
    """`exercises` (default: all of the bundle's) in course order, checked against the bundle's."""
    known = exercise_names(grading_root)
    if exercises is None:
        return known
    unknown = sorted(set(exercises) - set(known))
    if unknown or not exercises:
        raise ValueError(f"exercises must be some of {', '.join(known)}; got {', '.join(exercises) or 'none'}")
    return [name for name in known if name in exercises]


def student_folders(submissions_dir):
    """The student folders (visible subdirectories) of `submissions_dir`, by name."""
    submissions_dir = pathlib.Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise ValueError(f"submissions_dir must be a directory, got {str(submissions_dir)!r}")
    return sorted(
        path for path in submissions_dir.iterdir() if path.is_dir() and not path.name.startswith(".")
    )


def collect_submission(student_dir, exercises, destination):
    """Write the student's exercise files, and nothing else, into `destination`.

    Notebooks are converted to modules with `notebooks.notebook_to_module`.

    Returns:
        The names of the exercises found.
    """
    destination = pathlib.Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    found = []
    for exercise in exercises:
        source = _shallowest(student_dir, f"{exercise}.py") or _shallowest(
            student_dir, f"{exercise}.ipynb"
        )
        if source is None:
            continue
        if source.suffix == ".ipynb":
            text = notebooks.notebook_to_module(source)
        else:
            text = source.read_text(encoding="utf-8", errors="replace")
        (destination / f"{exercise}.py").write_text(text, encoding="utf-8")
        found.append(exercise)
    return found


def grade_submission(
    student_dir,
    *,
    grading_root,
    backend,
    exercises=None,
    timeout=600,
    memory_limit=4 * 2**30,
    seed=None,
    python=None,
):
    """Grade one student's folder in an isolated, limited ``pytest grader`` process.

    Args:
        student_dir: the student's folder.
        grading_root: a solution-free grading bundle (see module docstring).
        backend: the Keras backend to grade with.
        exercises: the exercises to grade (default: all); the others' files
            are still handed to the grader, as later exercises import earlier ones.
        timeout: wall-clock seconds the grading may take.
        memory_limit: bytes of data the grading process may use.
        seed: the grader's seed, to reproduce a run (default: a fresh one per run).
        python: the interpreter to grade with (default: this one).

    Returns:
        A `StudentGrade`.
    """
    student_dir = pathlib.Path(student_dir)
    grading_root = pathlib.Path(grading_root)
    selected = select_exercises(grading_root, exercises)
    exercises = exercise_names(grading_root)
    with tempfile.TemporaryDirectory(prefix="keras-tx-grade-") as workdir:
        workdir = pathlib.Path(workdir)
        submission = workdir / "submission"
        found = collect_submission(student_dir, exercises, submission)
        if not found:
            return StudentGrade(
                student_dir.name,
                FAILED,
                message=f"no exercise files found (expected {', '.join(exercises)}, .py or .ipynb)",
            )
        allowed = _stub_imports(grading_root, exercises)
        findings = [
            f"{name}.py {finding}"
            for name in found
            for finding in forbidden_imports((submission / f"{name}.py").read_text(), allowed)
        ]
        bundle = workdir / "bundle"
        for part in BUNDLE_PARTS:
            shutil.copytree(
                grading_root / part, bundle / part, ignore=shutil.ignore_patterns("__pycache__")
            )
        report = workdir / f"report-{secrets.token_hex(16)}.json"
        log_path = workdir / "grader.log"
        home = workdir / "home"
        home.mkdir()
        tests = ["grader"] if selected == exercises else [f"grader/test_{name}.py" for name in selected]
        command = [python or sys.executable, "-s", "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider",
                   "--reference", "recorded", "--submission", str(submission), "--backend", backend,
                   "--grade-json", str(report)]
        outcome = run_limited(
            command + ([] if seed is None else ["--seed", str(seed)]),
            cwd=bundle,
            env=_grading_environment(backend, home),
            timeout=timeout,
            memory_limit=memory_limit,
            log_path=log_path,
        )
        log = log_path.read_text(errors="replace")
        grade = StudentGrade(student_dir.name, FAILED, findings=findings, log=log)
        missing = sorted(set(selected) - set(found))
        if missing:
            grade.message = f"missing exercise files: {', '.join(missing)}. "
        if outcome.timed_out:
            grade.status = TIMEOUT
            grade.message += f"grading was stopped after the time limit of {timeout:g} s"
            return grade
        try:
            grade.exercises = _read_report(report, selected)
        except ValueError as error:
            grade.message += f"the grader could not finish (exit status {outcome.returncode}): {error}"
            return grade
        grade.status = GRADED
        return grade


def grade_all(submissions_dir, *, grading_root, backend, jobs=1, progress=True, **limits):
    """Grade every student folder of `submissions_dir`, `jobs` at a time.

    Args:
        submissions_dir: a folder with one subfolder per student.
        grading_root: a solution-free grading bundle.
        backend: the Keras backend to grade with.
        jobs: how many submissions to grade in parallel.
        progress: show a progress bar over the submissions.
        **limits: ``exercises``, ``timeout``, ``memory_limit``, ``seed`` and ``python``
            for `grade_submission`.

    Returns:
        The `StudentGrade` of every student, sorted by student.
    """
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    missing = [part for part in BUNDLE_PARTS if not (pathlib.Path(grading_root) / part).is_dir()]
    if missing:
        raise ValueError(
            f"grading_root must be a grading bundle with {', '.join(BUNDLE_PARTS)}/ "
            f"(see `keras-tx release`); {str(grading_root)!r} lacks {', '.join(missing)}/"
        )
    select_exercises(grading_root, limits.get("exercises"))  # fail before the first submission
    students = student_folders(submissions_dir)
    bar = _progress_bar(len(students)) if progress and students else None
    grades = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(grade_submission, student, grading_root=grading_root, backend=backend, **limits)
            for student in students
        ]
        for future in concurrent.futures.as_completed(futures):
            grades.append(future.result())
            if bar:
                bar.add(1)
    return sorted(grades, key=lambda grade: grade.student)


def _shallowest(folder, name):
    """The file called `name` nearest to the top of `folder`, or ``None``."""
    matches = [
        path
        for path in pathlib.Path(folder).rglob(name)
        if path.is_file() and not any(part.startswith(".") for part in path.parts[len(pathlib.Path(folder).parts):])
    ]
    return min(matches, key=lambda path: (len(path.parts), str(path)), default=None)


def _stub_imports(grading_root, exercises):
    """Top-level modules the exercise stubs import themselves (always allowed)."""
    folder = pathlib.Path(grading_root) / "exercises"
    return set().union(*(imported_modules((folder / f"{name}.py").read_text()) for name in exercises))


def _grading_environment(backend, home):
    """A minimal environment: the backend, a private home, no ``PYTHON*`` variables."""
    env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    env.update(
        HOME=str(home),
        TMPDIR=str(home),
        MPLBACKEND="Agg",
        # Several graders share one accelerator: take memory as needed, not all of it.
        XLA_PYTHON_CLIENT_PREALLOCATE="false",
        TF_FORCE_GPU_ALLOW_GROWTH="true",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    if backend != "all":
        env["KERAS_BACKEND"] = backend
    return env


def _read_report(path, exercises):
    """The per-exercise results of a ``--grade-json`` report, checked for shape."""
    try:
        report = json.loads(pathlib.Path(path).read_text())
    except FileNotFoundError:
        raise ValueError("it wrote no report") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"its report is unreadable ({error})") from None
    results = report.get("exercises") if isinstance(report, dict) else None
    if not isinstance(results, dict) or set(results) != set(exercises):
        raise ValueError(f"its report does not cover exactly the exercises {', '.join(exercises)}")
    for name, result in results.items():
        tests = result.get("tests") if isinstance(result, dict) else None
        if not (isinstance(tests, list) and all(isinstance(result.get(key), (int, float)) for key in ("points", "max"))):
            raise ValueError(f"its report for {name} lacks points, max or tests")
        if not 0 <= result["points"] <= result["max"]:
            raise ValueError(f"its report gives {name} {result['points']} of {result['max']} points")
    return results


def _progress_bar(count):
    """A Keras progress bar over `count` submissions."""
    import keras

    return keras.utils.Progbar(count, unit_name="submission")
