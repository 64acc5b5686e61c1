"""The grader's pytest plugin: options, fixtures, time limits, points and the score table.

``pytest grader [--solutions | --submission DIR] [--backend tensorflow|torch|jax|all]
[--seed N] [--hints full|cause|locate] [--grade-json PATH]`` (grader/README.md has the whole story).

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so nothing here imports Keras at
module level: `pytest_configure` first picks the backend, and a backend this process can no
longer switch to (or ``all``) is graded by one ``pytest grader`` subprocess per backend
(`grader.backends`).
"""

import dataclasses
import functools
import hashlib
import json
import os
import pathlib
import sys

import pytest

from grader.backends import BACKENDS, backends_to_spawn, grade_in_subprocesses
from grader.compilation import graphs_as_traced, prefer_fast_compilation, use_compilation_cache
from grader.feedback import HINT_LEVELS
from grader.gradebook import EXERCISES, ERROR, FAILED, NOT_ATTEMPTED, PASSED, Gradebook, matrix_table, report_table
from grader.limits import TimeLimitExceeded, time_limit
from grader.registry import COURSE
from grader.seeding import fresh_seed, seed_argument
from grader.submission import IMPORT_TIME_LIMIT

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Settings:
    """What this run grades, and how."""

    folder: pathlib.Path  # the exercise files to grade
    reference: str  # "live" or "recorded"
    seed: int
    timeout: float
    hints: str = "full"  # how much a failed check's message gives away (grader.feedback.HINT_LEVELS)
    subprocess_backends: tuple = ()  # backends graded by subprocesses instead of this process
    gradebook: Gradebook = None
    subprocess_runs: dict = dataclasses.field(default_factory=dict)  # {backend: grader.backends.BackendRun}

    @property
    def subprocess_reports(self):
        """``{backend: report, or None when its process crashed}``."""
        return {backend: run.report for backend, run in self.subprocess_runs.items()}


SETTINGS = pytest.StashKey[Settings]()


def pytest_addoption(parser):
    group = parser.getgroup("grader", "keras-tx grader")
    group.addoption("--solutions", action="store_true", help="grade the reference solutions/ (should score 100)")
    group.addoption("--submission", metavar="DIR", help="grade the exercise files in DIR instead of exercises/")
    group.addoption(
        "--backend",
        choices=(*BACKENDS, "all"),
        help="Keras backend to grade on; 'all' grades each in its own process (default: KERAS_BACKEND, "
        "else Keras' configured default)",
    )
    group.addoption("--seed", type=seed_argument, help="seed of the random inputs, to reproduce a run (default: a fresh one)")
    group.addoption("--grade-json", metavar="PATH", help="write the scores as JSON to PATH")
    group.addoption("--hints", choices=HINT_LEVELS, default="full",
                    help="how much a failed check's message gives away: full (where, the cause and the fix), "
                    "cause (where and the cause) or locate (only where); default full")
    group.addoption(
        "--reference",
        choices=("auto", "live", "recorded"),
        default="auto",
        help="compare with the solutions run live, or with grader/reference/ recordings "
        "(default auto: live when solutions/ exists)",
    )
    group.addoption("--threads", type=int, default=1, metavar="N",
                    help="PyTorch's intra-op threads (default 1: the checks' models are tiny, and more threads "
                    "only wait for each other on a busy machine)")
    group.addoption("--grade-timeout", type=float, default=60, metavar="SECONDS",
                    help=f"time limit per check (default 60; importing each exercise file has {IMPORT_TIME_LIMIT} s "
                         "of its own)")
    group.addoption("--isolate", action="store_true",
                    help="run the submission's code in a separate, limited process, sandboxed with bubblewrap "
                    "where available (grader/sandbox.py); the checks and the reference stay in this process")
    group.addoption("--memory-limit", type=float, metavar="GIB", default=4,
                    help="memory the submission's process may use with --isolate (default 4)")
    group.addoption("--time-budget", type=float, metavar="SECONDS",
                    help="wall-clock seconds the submission's code may run in all with --isolate (default: no limit)")
    group.addoption("--record-reference", metavar="DIR", help="save the reference cases to DIR (grader.record_reference)")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): the points a grader test is worth")
    option = config.option
    backend = os.environ.get("KERAS_BACKEND")
    if option.backend is None and backend is not None and backend not in BACKENDS:
        raise pytest.UsageError(
            f"KERAS_BACKEND={backend} is not a Keras backend: use one of {', '.join(BACKENDS)} (or --backend NAME)"
        )
    if option.threads < 1:
        raise pytest.UsageError(f"--threads must be an integer >= 1, got {option.threads}")
    if option.solutions and option.submission:
        raise pytest.UsageError("--solutions and --submission exclude each other: give one of them")
    if option.solutions:
        folder = ROOT / "solutions"
    elif option.submission:
        folder = pathlib.Path(option.submission).resolve()
    else:
        folder = ROOT / "exercises"
    if not folder.is_dir():
        raise pytest.UsageError(f"no folder {folder} to grade")
    reference = option.reference
    if reference == "auto":
        reference = "live" if (ROOT / "solutions").is_dir() else "recorded"
    if reference == "live" and not (ROOT / "solutions").is_dir():
        raise pytest.UsageError("--reference live needs the solutions/ folder, which this copy lacks")
    if option.record_reference and reference != "live":
        raise pytest.UsageError("--record-reference needs the live reference (the solutions/ folder)")
    settings = Settings(
        folder=folder,
        reference=reference,
        seed=fresh_seed() if option.seed is None else option.seed,
        timeout=option.grade_timeout,
        hints=option.hints,
        subprocess_backends=backends_to_spawn(option.backend),
    )
    if not settings.subprocess_backends and os.environ.get("KERAS_BACKEND") == "jax":
        prefer_fast_compilation()
    if option.record_reference and settings.subprocess_backends:
        raise pytest.UsageError("--record-reference records on this process's backend only: drop --backend or pick this one")
    config.stash[SETTINGS] = settings


def pytest_ignore_collect(collection_path, config):
    if config.stash[SETTINGS].subprocess_backends:
        return True  # the subprocesses grade; collecting here would import Keras for nothing
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("points") is None:
            raise pytest.UsageError(f"{item.nodeid} has no @pytest.mark.points(n) marker")
        if _exercise(item) not in COURSE.graded:
            raise pytest.UsageError(f"{item.path.name} checks {_exercise(item)!r}, which grader/registry.py does not "
                                    f"grade (it grades {', '.join(COURSE.graded)}): add Exercise({_exercise(item)!r}) "
                                    "to its COURSE")
    items.sort(key=lambda item: EXERCISES.index(_exercise(item)))


def pytest_runtestloop(session):
    settings = session.config.stash[SETTINGS]
    if not settings.subprocess_backends:
        return None
    runs = grade_in_subprocesses(settings.subprocess_backends, _forwarded_options(session.config, settings))
    settings.subprocess_runs = runs
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    for run in runs.values():
        if run.report is None:
            terminal.write(f"\ngrading on {run.backend} failed (exit status {run.returncode}):\n{run.output[-3000:]}\n")
        elif len(runs) == 1:
            terminal.write(run.output)
    return True


def _forwarded_options(config, settings):
    option = config.option
    forwarded = ["--seed", str(settings.seed), "--reference", settings.reference,
                 "--grade-timeout", str(settings.timeout), "--threads", str(option.threads),
                 "--hints", settings.hints]
    if option.solutions:
        forwarded.append("--solutions")
    if option.submission:
        forwarded += ["--submission", str(settings.folder)]
    if option.keyword:
        forwarded += ["-k", option.keyword]
    return forwarded


@dataclasses.dataclass
class Graded:
    """The loaded student modules and the reference they are compared with."""

    modules: dict
    reference: object
    submission: object = None  # the grader.remote.RemoteSubmission with --isolate


@pytest.fixture(scope="session")
def graded(pytestconfig):
    import keras

    from grader.checks import GRADED_PACKAGE
    from grader.eager_build import first_call_builds
    from grader.precision import full_float32_precision
    from grader.reference import RecordedReference, RecordingReference
    from grader.submission import load_submission

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(pytestconfig.option.threads)
    use_compilation_cache()
    graphs_as_traced()
    settings = pytestconfig.stash[SETTINGS]
    settings.gradebook = Gradebook(keras.backend.backend(), settings.seed, settings.reference, settings.hints)
    solutions = None
    if settings.reference == "live":
        loaded = load_submission(ROOT / "solutions")
        problems = [module._problem for module in loaded.values() if module._problem]
        if problems:
            raise RuntimeError(f"the solutions do not load: {'; '.join(problems)}")
        solutions = {exercise: module._module for exercise, module in loaded.items()}
    if pytestconfig.option.record_reference:
        reference = RecordingReference(solutions, settings.seed)
    elif solutions:
        reference = _live_reference(solutions, settings.seed)
    else:
        reference = RecordedReference(ROOT / "grader" / "reference")
    settings.gradebook.reference = reference.description
    modules, submission = _load_modules(pytestconfig, settings)
    # Both restored afterwards: grading may run in the caller's process (and a model built by its
    # first call would not save and load). The live reference computes its cases within the checks.
    with full_float32_precision(), first_call_builds():
        yield Graded(modules, reference, submission)
    if submission is not None:
        submission.close()
        settings.gradebook.out_of_time = submission.out_of_time
        settings.gradebook.student_seconds = {"wall": submission.seconds, "cpu": submission.cpu_seconds}
    if isinstance(reference, RecordingReference):
        reference.save(pathlib.Path(pytestconfig.option.record_reference))
    for name in [name for name in sys.modules if name.startswith(GRADED_PACKAGE)]:
        del sys.modules[name]


_LIVE_REFERENCES = {}


def _live_reference(solutions, seed):
    """The `LiveReference` of `seed`, kept for the next run in this process with the same solutions:
    a warm grader (``keras-tx grade-all``) then computes the reference once for the whole batch."""
    from grader.reference import LiveReference

    code = b"".join(pathlib.Path(module.__file__).read_bytes() for module in solutions.values())
    key = (seed, hashlib.sha256(code).hexdigest())
    if key not in _LIVE_REFERENCES:
        _LIVE_REFERENCES.clear()
        _LIVE_REFERENCES[key] = LiveReference(solutions, seed)
    return _LIVE_REFERENCES[key]


def _load_modules(pytestconfig, settings):
    """``({exercise: module}, RemoteSubmission or None)``: loaded here, or in a sandboxed child with --isolate."""
    import keras

    from grader.submission import load_submission

    if not pytestconfig.option.isolate:
        return load_submission(settings.folder), None
    from grader.remote import RemoteSubmission, warm_process

    process = warm_process(keras.backend.backend())
    limits = {"memory_bytes": int(pytestconfig.option.memory_limit * 2**30)}
    submission = RemoteSubmission(process, settings.folder, limits, pytestconfig.option.time_budget)
    settings.gradebook.isolation = ("sandboxed: a separate process in bubblewrap" if process.isolated
                                    else "NOT ISOLATED: a separate process without bubblewrap")
    try:
        modules = submission.modules()
    except BaseException:
        submission.close()  # no teardown follows a failed setup: nothing of this hand-in may outlive its grading
        raise
    submission.follow_seeding()
    return modules, submission


@pytest.fixture
def student(request, graded):
    """The student's module of the exercise under test (``test_masking.py`` -> ``masking.py``).

    A file still untouched is not attempted: its checks end before the reference is computed.
    """
    from grader.submission import StudentModule

    module = graded.modules[_exercise(request.node)]
    if isinstance(module, StudentModule) and module.untouched:  # with --isolate, the checks find out
        raise NotImplementedError("not attempted yet")
    return module


@pytest.fixture
def students(graded):
    """``{exercise: module}``: every exercise's student module, for a check that needs another one's."""
    return graded.modules


@pytest.fixture
def references(graded):
    """``references(exercise, case, draw_inputs, run)``: the cases of any exercise, for a check whose
    failure may come from another exercise's code (see `grader.test_model.gpt_differs`)."""
    return graded.reference.cases


@pytest.fixture
def reference(request, graded):
    """``reference(case, draw_inputs, run) -> [(inputs, expected)]`` for the exercise under test.

    Two cases: one drawn from the run's seed, one from `grader.reference.FIXED_SEED`.
    """
    return functools.partial(graded.reference.cases, _exercise(request.node))


@pytest.fixture
def rngs(request, pytestconfig):
    """Random generators for property checks: from the run's seed, then from the fixed seed.

    Each also depends on the test's name. A property check runs on both, so that its verdict
    never rests on a lucky draw alone.
    """
    from grader.reference import check_rngs

    return check_rngs(pytestconfig.stash[SETTINGS].seed, request.node.name)


@pytest.fixture(autouse=True)
def seeded_keras(request, pytestconfig, graded):
    """Seed Keras' own random initializers per test (with --isolate, in the submission's process
    too), so a run is reproducible from its seed."""
    from grader.reference import seed_keras

    seed_keras(pytestconfig.stash[SETTINGS].seed, request.node.name)


def _exercise(item):
    return item.path.stem.removeprefix("test_")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with time_limit(item.config.stash[SETTINGS].timeout, "this check"):
        return (yield)


class Feedback:
    """A failure shown as one message instead of a traceback."""

    def __init__(self, message):
        self.message = message

    @property
    def reprcrash(self):  # pytest's short summary (-ra) reads longrepr.reprcrash.message
        return self

    def toterminal(self, terminal_writer):
        terminal_writer.line(self.message)

    def __str__(self):
        return self.message


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome, message, advice = _grade(item, call, report)
        item.config.stash[SETTINGS].gradebook.add(
            _exercise(item), item.name, item.get_closest_marker("points").args[0], outcome, message, advice
        )
    return report


def _grade(item, call, report):
    """Turn one test's outcome into ``(outcome, message, advice)``, rewriting `report` for the student.

    `advice` is the message's cause and fix without its place (`Feedback.why`), or "" when none."""
    from grader.failures import GraderError, GradingFailure, failure_feedback, quotes_no_expected_value, raising_stub

    if report.passed:
        return PASSED, "", ""
    error = call.excinfo.value if call.excinfo else None
    if isinstance(error, NotImplementedError):
        stub = raising_stub(error)
        elsewhere = stub and not stub.startswith(f"{_exercise(item)}.py ")
        message = f"not attempted yet: it runs your {stub}, not written yet" if elsewhere else "not attempted yet"
        report.outcome = "skipped"
        report.longrepr = (str(item.path), None, message)
        return NOT_ATTEMPTED, message, ""
    settings = item.config.stash[SETTINGS]
    if isinstance(error, GraderError):
        return ERROR, f"the grader could not run this check: {error}", ""
    if isinstance(error, TimeLimitExceeded):
        message = advice = str(error)
    elif isinstance(error, GradingFailure) or (error is not None and report.when == "call"):
        feedback = failure_feedback(error, settings.folder)
        message, advice = feedback.at(settings.hints), feedback.why(settings.hints)
        if quotes_no_expected_value(error):
            advice = message  # a hidden check shows it too
    else:
        last_line = (report.longreprtext.strip().splitlines() or ["?"])[-1]
        return ERROR, f"the grader could not run this check: {last_line}", ""
    report.longrepr = Feedback(message)
    return FAILED, message, advice


def pytest_terminal_summary(terminalreporter, config):
    settings = config.stash.get(SETTINGS, None)
    if settings is None:
        return
    if settings.subprocess_backends:
        terminalreporter.section("grade: all backends" if len(settings.subprocess_backends) > 1 else "grade")
        reports = settings.subprocess_reports
        for backend, report in reports.items():
            if report and len(reports) > 1:
                terminalreporter.write_line("")
                for line in report_table(report):
                    terminalreporter.write_line(line)
        terminalreporter.write_line("")
        for line in matrix_table(reports):
            terminalreporter.write_line(line)
        times = ", ".join(f"{run.backend} {run.seconds:.1f} s" for run in settings.subprocess_runs.values())
        terminalreporter.write_line(f"graded in subprocesses: {times}")
        config.option.verbose = -2  # no "no tests ran": the subprocesses ran them
    elif settings.gradebook is not None:
        terminalreporter.section("grade")
        for line in settings.gradebook.table():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"reproduce this run with: {_reproducing_command(config, settings)}")


def _reproducing_command(config, settings):
    """``pytest grader --seed N``, with the options that choose what was graded, where and how it was told
    (``--isolate`` kept: a class's hand-in, graded sandboxed, must not be rerun outside the sandbox)."""
    option = config.option
    words = ["pytest", *(config.args or ["grader"]), f"--seed {settings.seed}"]  # the exercises' files, when chosen
    words += ["--solutions"] if option.solutions else [f"--submission {option.submission}"] if option.submission else []
    words += [f"--backend {option.backend}"] if option.backend else []
    words += ["--isolate"] if option.isolate else []
    words += [f"--hints {option.hints}"] if option.hints != "full" else []
    return " ".join(words)


def pytest_sessionfinish(session, exitstatus):
    settings = session.config.stash.get(SETTINGS, None)
    if settings is None:
        return
    if settings.subprocess_backends:
        report = {"backend": "all", "seed": settings.seed, "backends": settings.subprocess_reports}
        completed = all(settings.subprocess_reports.get(backend) for backend in settings.subprocess_backends)
        session.exitstatus = pytest.ExitCode.OK if completed else pytest.ExitCode.INTERNAL_ERROR
        if len(settings.subprocess_backends) == 1 and completed:
            report = settings.subprocess_reports[settings.subprocess_backends[0]]
    elif settings.gradebook is not None:
        report = settings.gradebook.report()
        if exitstatus == pytest.ExitCode.TESTS_FAILED:
            session.exitstatus = pytest.ExitCode.OK  # grading completed; the score is in the table
    else:
        return
    if session.config.option.grade_json:
        pathlib.Path(session.config.option.grade_json).write_text(json.dumps(report, indent=2))
