"""Grade a whole class: warm graders, and each hand-in's code in its own sandboxed process.

Each student's hand-in is graded by ``pytest grader --isolate`` (see ``grader/README.md``):
the checks and the reference run in the grader, and the student's exercise files, and
nothing else from the hand-in, run in a fresh child process inside a bubblewrap sandbox
(`grader.sandbox`). There they see the Python environment, read-only, their own files and the
inputs they are given: no solutions, no recorded references, no gradebook, no other student's
files, no network; and they have limits on CPU time, memory, processes and wall-clock time. So
a submitted ``conftest.py``, ``pytest.ini`` or ``sitecustomize.py`` is never even copied, and a
submission that prints ``PASSED``, patches NumPy's comparisons or looks for the answers gains
nothing: the score is read from the report the grader writes to a randomly named file.

`grade_all` keeps `jobs` graders warm, each with Keras imported once and one sandboxed
process that forks a fresh child per hand-in; `grade_submission` grades one hand-in in a new
``pytest`` process. When bubblewrap is missing or cannot create namespaces, grading still
runs, with a loud warning, and every `StudentGrade` says its code was not isolated.

The grader's failure is never the student's: a hand-in with a check the grader could not run
(its sandbox failed) is graded again in a fresh sandbox, and marked `ERROR` if that fails too.
Each warm grader runs under a memory limit (`GRADER_MEMORY_BYTES`); one that dies anyway is
replaced, the hand-ins it was grading are graded again, and one that kills graders twice,
even graded alone, is marked `ERROR`: one hand-in never costs another student points.

A student directory holds the exercise files (``attention.py``, ...) or the nbgrader
notebooks (``attention.ipynb``, ...) anywhere below it, the shallowest copy winning; for each
exercise a ``.py`` file wins over a notebook.

Example (run inside the course repository, one folder per student)::

    grades = grade_all("submissions/", grading_root=".", backend="jax", jobs=2)
    for grade in grades:
        print(grade.student, grade.status, grade.total)
"""

import concurrent.futures
import contextlib
import dataclasses
import fcntl
import functools
import gc
import io
import json
import multiprocessing
import os
import pathlib
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import warnings

from grader.feedback import check_hint_level
from grader.registry import load_course
from grader.sandbox import NotIsolatedWarning, bubblewrap_works
from grader.screening import forbidden_imports, imported_modules
from grader.seeding import checked_seed, fresh_seed
from keras_tx_tools.course import notebooks, stubs

GRADED, FAILED, TIMEOUT, ERROR = "graded", "failed", "timeout", "error"
"""The status of a graded submission: graded normally, no report, out of time, or the grader's own
failure (the instructor regrades it)."""

GRADER_MEMORY_BYTES = 4 * 2**30
"""The data a warm grader of `grade_all` may hold: past it, an allocation fails instead of the machine."""

STARTUP_SECONDS = 300
"""Time a ``pytest grader`` process may take to start, on top of a hand-in's time limit."""
FILLING_SECONDS = 600
"""Time the solutions' grading may take to fill JAX's compilation cache (`compilation_cache_filling`)."""


@dataclasses.dataclass
class StudentGrade:
    """The grading of one student's submission.

    Attributes:
        student: the name of the student's folder.
        status: `GRADED`, `FAILED`, `TIMEOUT` or `ERROR`.
        exercises: the grader's report per exercise, ``{name: {"points",
            "max", "tests"}}``; empty unless `status` is `GRADED`.
        message: why the submission was not graded (empty when it was).
        findings: forbidden imports found in the submitted files.
        log: the grader's full output, for the instructor's eyes only.
        isolation: how the student's code was kept apart (from the grader's report).
        seconds: wall-clock seconds the grading took, of those the seconds spent waiting for
            the student's process, and the CPU seconds that process used:
            ``{"total": ..., "student": ..., "student_cpu": ...}``.
    """

    student: str
    status: str
    exercises: dict = dataclasses.field(default_factory=dict)
    message: str = ""
    findings: list = dataclasses.field(default_factory=list)
    log: str = ""
    isolation: str = ""
    seconds: dict = dataclasses.field(default_factory=dict)

    @property
    def total(self):
        """Points earned over all exercises (0 when not graded)."""
        return sum(report["points"] for report in self.exercises.values())

    def points(self, exercise):
        """Points earned on `exercise` (0 when not graded)."""
        return self.exercises.get(exercise, {}).get("points", 0)


def assignment(grading_root, exercises=None):
    """The course `grading_root`'s grader grades, cut down to `exercises` (default: all it grades).

    The exercises that `exercises` import and leave out are given (`grader.registry.Course.subset`).

    Raises:
        ValueError: an exercise that the grader of `grading_root` does not grade, naming those it does.
    """
    return load_course(grading_root).subset(exercises)


def check_files(course, selected):
    """The pytest arguments that run the checks of `selected` (a subset of `course`): the whole grader for all of them."""
    return ["grader"] if selected.graded == course.graded else [f"grader/test_{name}.py" for name in selected.graded]


def given_code(grading_root, exercise):
    """The finished code of `exercise` that grading may hand to the exercises importing it, or ``None``.

    From ``solutions/`` in a course repository; in a release, the given file it handed out.
    """
    grading_root = pathlib.Path(grading_root)
    solution = grading_root / "solutions" / f"{exercise}.py"
    if solution.is_file():
        return stubs.given_code(solution.read_text(encoding="utf-8"))
    handed_out = grading_root / "exercises" / f"{exercise}.py"
    source = handed_out.read_text(encoding="utf-8") if handed_out.is_file() else ""
    return source if stubs.is_given_code(source) else None


def student_folders(submissions_dir):
    """The student folders (visible subdirectories) of `submissions_dir`, by name."""
    submissions_dir = pathlib.Path(submissions_dir).resolve()  # the graders run in another folder
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


def screen(folder, found, grading_root):
    """The forbidden imports of the exercise files `found` in `folder`, ``"file.py line N: ..."``."""
    stubs = pathlib.Path(grading_root) / "exercises"
    allowed = set().union(*(imported_modules(path.read_text()) for path in stubs.glob("[!_]*.py")))
    return [
        f"{name}.py {finding}"
        for name in found
        for finding in forbidden_imports((folder / f"{name}.py").read_text(encoding="utf-8"), allowed)
    ]


def grade_submission(student_dir, *, grading_root, backend, exercises=None, timeout=600,
                     memory_limit=4 * 2**30, seed=None, hints="full", run=None):
    """Grade one student's folder with ``pytest grader --isolate``.

    Args:
        student_dir: the student's folder.
        grading_root: the course repository (or a bundle from ``keras-tx release``) whose
            ``grader/`` grades; with ``solutions/`` there, the reference runs live on fresh inputs.
        backend: the Keras backend to grade with.
        exercises: the exercises to grade (default: all the grader of `grading_root` grades); the
            others' files are still handed to the grader, as later exercises import earlier ones.
            An exercise they import that the hand-in lacks is given: its finished code
            (`given_code`) stands in, as in a release of those `exercises`.
        timeout: wall-clock seconds the student's code may run in all.
        memory_limit: bytes of data the student's process may use.
        seed: the grader's seed, to reproduce a run (default: a fresh one per run).
        hints: how much the messages give away: ``"full"`` (where, the cause and the fix),
            ``"cause"`` (where and the cause) or ``"locate"`` (only where); see grader/README.md.
        run: how to run ``pytest`` on a list of arguments, returning its output
            (default: `run_pytest_process`; `grade_all`'s warm graders run it in-process).

    Returns:
        A `StudentGrade`.
    """
    student_dir = pathlib.Path(student_dir)
    course = assignment(grading_root)
    selected = course.subset(exercises)
    check_hint_level(hints)
    with tempfile.TemporaryDirectory(prefix="keras-tx-grade-") as workdir:
        submission = pathlib.Path(workdir) / "submission"
        found = collect_submission(student_dir, course.names, submission)
        if not found:
            return StudentGrade(student_dir.name, FAILED, message="no exercise files found "
                                f"(expected {', '.join(selected.graded)}, .py or .ipynb)")
        for name in set(selected.given) - set(found):
            code = given_code(grading_root, name)
            if code is not None:
                (submission / f"{name}.py").write_text(code, encoding="utf-8")
        report = pathlib.Path(workdir) / f"report-{secrets.token_hex(16)}.json"
        tests = check_files(course, selected)
        arguments = [*tests, "-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "--isolate", "--submission", str(submission),
                     "--backend", backend, "--grade-json", str(report), "--time-budget", f"{timeout:g}",
                     "--grade-timeout", f"{min(60, timeout + 1):g}", "--memory-limit", f"{memory_limit / 2**30:g}",
                     "--hints", hints]
        if seed is not None:
            arguments += ["--seed", str(seed)]
        missing = sorted(set(selected.graded) - set(found))
        for _ in range(2):  # a check the grader could not run: once more, in a fresh sandbox
            report.unlink(missing_ok=True)
            start = time.monotonic()
            log = (run or run_pytest_process)(arguments, grading_root=grading_root, backend=backend, timeout=timeout)
            log = log.replace(str(submission), str(student_dir.resolve()))  # the hand-in, not a folder gone by now
            grade = StudentGrade(student_dir.name, FAILED, findings=screen(submission, found, grading_root), log=log,
                                 seconds={"total": time.monotonic() - start})
            grade.message = f"missing exercise files: {', '.join(missing)}. " if missing else ""
            grade = _read_report(grade, report, selected.graded, timeout)
            if grade.status != ERROR:
                return grade
        grade.message += "; so did a fresh sandbox: regrade this hand-in"
        return grade


def run_pytest_process(arguments, *, grading_root, backend, timeout):
    """Run ``pytest`` with `arguments` in a new process in `grading_root`; its output."""
    try:
        finished = subprocess.run(**_pytest_process(arguments, grading_root, backend), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=timeout + STARTUP_SECONDS)
    except subprocess.TimeoutExpired as error:
        return (error.output or b"").decode(errors="replace") + "\nthe grader ran out of time"
    return finished.stdout.decode(errors="replace")


def start_pytest_process(arguments, *, grading_root, backend, **options):
    """Start ``pytest`` as `run_pytest_process` runs it, and return at once; `options` go to `subprocess.Popen`."""
    return subprocess.Popen(**_pytest_process(arguments, grading_root, backend), **options)


def _pytest_process(arguments, grading_root, backend):
    """The `subprocess` arguments of a ``pytest`` process in `grading_root`, under the graders' memory limit."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(pathlib.Path(grading_root).resolve())}
    return {"args": [sys.executable, "-m", "pytest", *arguments], "cwd": grading_root, "env": env,
            "stdin": subprocess.DEVNULL, "preexec_fn": limit_grader_memory}


def limit_grader_memory():
    """Limit this process's data to `GRADER_MEMORY_BYTES` (or less, if its hard limit is lower)."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = GRADER_MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(GRADER_MEMORY_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def run_pytest_here(arguments, **_):
    """Run ``pytest`` with `arguments` in this (warm) process; its output."""
    import pytest

    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        pytest.main(arguments)
    if not _settled:
        _settle()  # what the first hand-in brought in for good: the checks, the reference's programs
    return output.getvalue()


_settled = False
"""Whether this warm grader has graded a hand-in, and frozen what stays after it (`_settle`)."""


def _settle():
    """Collect this process's garbage, then freeze what is left (`gc.freeze`).

    What a warm grader holds after its warm-up and its first hand-in (Keras, the backend, the
    checks, the reference's programs) stays alive as long as the grader. Frozen, it is no longer
    traversed by every later collection: on JAX, a grader's collections over 20 hand-ins of the
    first four exercises took 2.6 CPU-s before, 0.8 after.
    """
    global _settled
    gc.collect()
    gc.freeze()
    _settled = True


def grade_all(submissions_dir, *, grading_root, backend, jobs=1, progress=True, **limits):
    """Grade every student folder of `submissions_dir`, `jobs` at a time.

    Args:
        submissions_dir: a folder with one subfolder per student.
        grading_root: the course repository, or a bundle from ``keras-tx release``.
        backend: the Keras backend to grade with.
        jobs: how many submissions to grade in parallel, each by a warm grader.
        progress: show a progress bar over the submissions.
        **limits: ``exercises``, ``timeout``, ``memory_limit``, ``seed`` and ``hints`` for `grade_submission`
            (default seed: a fresh one for the batch).

    Returns:
        The `StudentGrade` of every student, sorted by student.
    """
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    grading_root = pathlib.Path(grading_root).resolve()
    if not (grading_root / "grader" / "conftest.py").is_file():
        raise ValueError(f"grading_root must hold the course's grader/ (see `keras-tx release`); "
                         f"{str(grading_root)!r} does not")
    assignment(grading_root, limits.get("exercises"))  # fails before the first submission
    check_hint_level(limits.get("hints", "full"))
    # One fresh seed for the whole batch: unknown to every student beforehand, like a seed per
    # hand-in, and each grader computes the reference's outputs once for the whole class.
    limits["seed"] = fresh_seed() if limits.get("seed") is None else checked_seed(limits["seed"])
    if not bubblewrap_works():
        warnings.warn("\n*** bubblewrap (bwrap) is missing or cannot create namespaces: students' code will run "
                      "NOT ISOLATED and can read what this user can. Install the 'bubblewrap' package. ***",
                      NotIsolatedWarning, stacklevel=2)
    students = student_folders(submissions_dir)
    if not students:
        return []
    bar = _progress_bar(len(students)) if progress else None
    grade = functools.partial(grade_submission, grading_root=grading_root, backend=backend, run=run_pytest_here,
                              **limits)
    with compilation_cache_filling(grading_root, backend, limits["seed"], limits.get("exercises")) as filling:
        return _grade_in_pools(students, jobs, grade, functools.partial(_warm_up, str(grading_root), backend, filling),
                               bar)


@contextlib.contextmanager
def compilation_cache_filling(grading_root, backend, seed, exercises=None):
    """On JAX, grade the solutions once, in a process of their own, while the graders warm up.

    The sandboxed children only read JAX's compilation cache (`grader.compilation`), and the
    graders fill it only with the reference's programs; the checks that run the student's code
    alone (a GPT's causality, a sampler's draws) would be compiled afresh in every child. Grading
    the solutions with the batch's seed puts every program a correct hand-in runs in the cache: on
    a fresh cache, a solved course's child then costs half the CPU (benchmarks/RESULTS.md).

    Yields the path of a lock that the filling process holds until it ends (`wait_for_filling`
    waits on it), or None where there is nothing to fill: on other backends, with the cache off
    (``KERAS_TX_JAX_CACHE=none``) or without ``solutions/`` in `grading_root`. The process is
    stopped after `FILLING_SECONDS`, and on leaving.
    """
    from grader.compilation import cache_folder

    if backend != "jax" or cache_folder() is None or not (pathlib.Path(grading_root) / "solutions").is_dir():
        yield None
        return
    course = load_course(grading_root)
    tests = check_files(course, course.subset(exercises))
    with tempfile.TemporaryDirectory(prefix="keras-tx-filling-") as folder:
        lock_path = os.path.join(folder, "lock")
        lock = os.open(lock_path, os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            process = start_pytest_process(
                [*tests, "-q", "-p", "no:cacheprovider", "--solutions", "--backend", backend, "--seed", str(seed)],
                grading_root=grading_root, backend=backend, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(lock,))
        finally:
            os.close(lock)  # the lock is the filling process's alone now: it goes when the process ends
        deadline = threading.Timer(FILLING_SECONDS, process.kill)
        deadline.start()
        try:
            yield lock_path
        finally:
            deadline.cancel()
            if process.poll() is None:
                process.kill()
            process.wait()


def wait_for_filling(lock_path):
    """Return once the process of `compilation_cache_filling` that holds `lock_path` has ended."""
    with open(lock_path, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)


def _grade_in_pools(students, jobs, grade, warm_up, bar=None):
    """``grade(student)`` for each of `students` in pools of `jobs` processes that ran `warm_up`, by student.

    A student whose pool broke (a process died) is graded again in a fresh pool, then alone if that
    breaks too; one that breaks a pool even alone is an `ERROR`, the others are graded.
    """
    grades, crashed = _grade_in_pool(students, jobs, grade, warm_up, bar)
    if crashed:  # a grader died: its hand-ins again, in fresh graders
        again, crashed = _grade_in_pool(crashed, jobs, grade, warm_up, bar)
        grades += again
        for student in crashed if grades else ():  # still: each alone (where graders work at all)
            grades += _grade_in_pool([student], 1, grade, warm_up, bar)[0]
    graded = {grade.student for grade in grades}
    grades += [StudentGrade(student.name, ERROR, message="the grader's process died while grading this hand-in, "
                            "in fresh graders too: regrade it") for student in students if student.name not in graded]
    return sorted(grades, key=lambda grade: grade.student)


def _grade_in_pool(students, jobs, grade, warm_up, bar):
    """Grade `students` in one pool: ``(grades, students whose grader died)``."""
    grades, crashed = [], []
    context = multiprocessing.get_context("spawn")  # a clean process: no threads, no Keras of ours
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=warm_up) as pool:
        futures = {pool.submit(grade, student): student for student in students}
        for future in concurrent.futures.as_completed(futures):
            student = futures[future]
            try:
                grades.append(future.result())
            except concurrent.futures.process.BrokenProcessPool:
                crashed.append(student)
                continue
            except Exception as error:  # noqa: BLE001 -- the grader's bug must not stop the batch
                grades.append(StudentGrade(student.name, ERROR, message=f"the grader failed: {type(error).__name__}: {error}"))
            if bar:
                bar.add(1)
    return grades, sorted(crashed)


def _warm_up(grading_root, backend, filling=None):
    """Make a pool process a warm grader: the grading root's grader, Keras and the sandbox, ready,
    under its memory limit; then wait for the compilation cache's `filling`, if any."""
    limit_grader_memory()
    os.environ["KERAS_BACKEND"] = backend
    os.chdir(grading_root)
    sys.path.insert(0, grading_root)
    for name in [name for name in sys.modules if name == "grader" or name.startswith("grader.")]:
        del sys.modules[name]  # the grading root's grader, not the one this package came with
    from grader.compilation import prefer_fast_compilation

    if backend == "jax":
        prefer_fast_compilation()  # before Keras starts JAX, as `pytest grader` does
    from grader.remote import warm_process

    warm_process(backend)
    gc.freeze()  # Keras, the backend and the grader's modules: held for good (`_settle`)
    if filling:
        wait_for_filling(filling)


def _read_report(grade, path, exercises, timeout):
    """Fill `grade` from the grader's ``--grade-json`` report at `path`."""
    try:
        report = json.loads(pathlib.Path(path).read_text())
        results = _checked_results(report, exercises)
    except (OSError, ValueError) as error:
        grade.status = ERROR  # the student's code runs sandboxed: a grader that did not finish failed on its own
        grade.message += f"the grader could not finish: {error}"
        return grade
    grade.isolation = str(report.get("isolation", ""))
    student = report.get("student_seconds") or {}
    grade.seconds.update(student=student.get("wall"), student_cpu=student.get("cpu"))
    if report.get("out_of_time"):
        grade.status = TIMEOUT
        grade.message += f"grading was stopped after the time limit of {timeout:g} s"
        return grade
    grade.status, grade.exercises = GRADED, results
    errors = [f"{name}: {test.get('message')}" for name, result in results.items()
              for test in result["tests"] if test.get("outcome") == "error"]
    if errors:
        grade.status = ERROR
        grade.message += f"the grader could not run {len(errors)} checks (first, {errors[0]})"
    return grade


def _checked_results(report, exercises):
    """The per-exercise results of a report, checked for shape."""
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


def _shallowest(folder, name):
    """The file called `name` nearest to the top of `folder`, or ``None``."""
    matches = [
        path
        for path in pathlib.Path(folder).rglob(name)
        if path.is_file() and not any(part.startswith(".") for part in path.parts[len(pathlib.Path(folder).parts):])
    ]
    return min(matches, key=lambda path: (len(path.parts), str(path)), default=None)


def _progress_bar(count):
    """A Keras progress bar over `count` submissions."""
    import keras

    return keras.utils.Progbar(count, unit_name="submission")
