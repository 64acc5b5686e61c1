"""``keras-tx grade-all``: grade every student's submission, in parallel and isolated.

Example::

    keras-tx grade-all submissions/ --backend jax --jobs 8 --plot runs/grade-all/scores.png
    keras-tx grade-all submissions/ --hints cause   # name each mistake's cause, not its fix

writes into ``--out`` (default ``runs/grade-all``): ``grades.csv`` (one row
per student), ``feedback/<student>.txt`` for the students,
``logs/<student>.log`` and ``.json`` (the grader's full output, and every
check's result by exercise, hidden tests included) for the instructor, and ``run.json``: the
backend, the seed and the command that grades the class again the same way. With ``--gradescope
DIR`` a Gradescope ``results.json`` per student. Then it prints a summary with a score histogram.
A folder that already holds a gradebook is refused before grading starts, unless ``--overwrite``.
"""

import argparse
import collections
import datetime
import json
import pathlib
import shlex
import shutil
from importlib.metadata import PackageNotFoundError, version

from grader.feedback import HINT_LEVELS
from grader.seeding import fresh_seed, seed_argument
from keras_tx_tools.commands import add_exercises_argument, existing_folder

BACKENDS = ("tensorflow", "torch", "jax")
LIMITS = {"timeout": 600.0, "memory": 4.0}
"""The default limits per submission: wall-clock seconds and GiB of memory."""


def add_arguments(parser):
    """Declare the command line of ``keras-tx grade-all``."""
    parser.description = "Grade every student folder of SUBMISSIONS_DIR with `pytest grader`."
    parser.add_argument("submissions", metavar="SUBMISSIONS_DIR", type=pathlib.Path,
                        help="a folder with one subfolder per student, holding the exercise files or notebooks")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend to grade with (default: the configured Keras backend)")
    add_exercises_argument(parser, "grade")
    parser.add_argument("--seed", type=seed_argument,
                        help="the grader's seed, to reproduce a batch (default: a fresh one per batch, "
                             "the same for every hand-in)")
    parser.add_argument("--hints", choices=HINT_LEVELS, default="full",
                        help="how much the feedback gives away: full (where, the cause and the fix), cause "
                        "(where and the cause) or locate (only where); default full")
    parser.add_argument("--jobs", type=_positive(int), default=1,
                        help="submissions graded in parallel (default: 1)")
    parser.add_argument("--timeout", type=_positive(float), default=LIMITS["timeout"],
                        help="wall-clock seconds allowed per submission (default: 600)")
    parser.add_argument("--memory", type=_positive(float), default=LIMITS["memory"],
                        help="GiB of memory allowed per submission (default: 4)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs", "grade-all"), metavar="DIR",
                        help="the folder for grades.csv, feedback/, logs/ and run.json (default: runs/grade-all)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the gradebook already in --out (by default such a folder is refused)")
    parser.add_argument("--release", type=pathlib.Path,
                        help="a bundle from `keras-tx release` to grade with, against its recorded references "
                        "(default: this course repository, against the solutions run live on fresh inputs)")
    parser.add_argument("--gradescope", type=pathlib.Path, metavar="DIR",
                        help="also write DIR/<student>/results.json in Gradescope's format")
    parser.add_argument("--plot", type=pathlib.Path, metavar="PNG",
                        help="also save the score histogram as an image")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="do not show the progress bar")


def run(args):
    """Grade the class, write the gradebook and feedback, print the summary; return the exit status."""
    from keras_tx_tools.course import batch, exports, release, summary

    folder = args.out
    _refuse_a_graded_folder(folder, args.overwrite)
    backend = args.backend or _configured_backend()
    seed = fresh_seed() if args.seed is None else args.seed
    grades = batch.grade_all(
        args.submissions,
        grading_root=args.release or release.repository_root(),
        backend=backend,
        jobs=args.jobs,
        progress=args.progress,
        exercises=args.exercises,
        timeout=args.timeout,
        memory_limit=int(args.memory * 2**30),
        seed=seed,
        hints=args.hints,
    )
    if not grades:
        raise ValueError(f"SUBMISSIONS_DIR must hold one folder per student; {str(args.submissions)!r} has none")
    folder.mkdir(parents=True, exist_ok=True)
    for earlier in ("feedback", "logs"):  # --overwrite: no file of a student the earlier run had
        shutil.rmtree(folder / earlier, ignore_errors=True)
    record = run_record(args, backend, seed, grades)
    (folder / RUN_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    exports.write_csv(grades, folder / "grades.csv")
    exports.write_feedback(grades, folder / "feedback")
    (folder / "logs").mkdir(exist_ok=True)
    for grade in grades:
        (folder / "logs" / f"{grade.student}.log").write_text(grade.log, encoding="utf-8")
        if grade.exercises:
            (folder / "logs" / f"{grade.student}.json").write_text(json.dumps(grade.exercises, indent=1))
    if args.gradescope:
        exports.write_gradescope(grades, args.gradescope)
    max_points = sum(exports.course_maxima(grades).values())
    if max_points:
        print(summary.summarize(grades, max_points))
        if args.plot:
            args.plot.parent.mkdir(parents=True, exist_ok=True)
            summary.plot_histogram(grades, max_points, args.plot)
    else:
        print(f"no submission could be graded; see {folder / 'logs'}")
    not_isolated = sum(exports.isolated(grade) == "NO" for grade in grades)
    if not_isolated:
        print(f"WARNING: {not_isolated} submissions ran NOT ISOLATED (bubblewrap unavailable): see the 'isolated' column")
    print(f"gradebook: {folder / 'grades.csv'}; feedback: {folder / 'feedback'}")
    print(f"to grade the class again the same way: {record['command']}")
    return 0


RUN_RECORD = "run.json"
"""The file in ``--out`` that says how the class was graded (`run_record`)."""


def run_record(args, backend, seed, grades):
    """How the class was graded: backend, seed, hint level, exercises, reference, versions, date,
    statuses, and the command that grades it again the same way."""
    again = ["keras-tx", "grade-all", str(args.submissions.resolve()), "--backend", backend, "--seed", str(seed),
             "--out", str(args.out.resolve())]
    if args.exercises:
        again += ["--exercises", ",".join(args.exercises)]
    if args.hints != "full":
        again += ["--hints", args.hints]
    for option, default in LIMITS.items():  # a time or memory limit can change a grade
        if getattr(args, option) != default:
            again += [f"--{option}", f"{getattr(args, option):g}"]
    if args.release:
        again += ["--release", str(args.release.resolve())]
    return {
        "command": shlex.join(again),
        "backend": backend,
        "seed": seed,
        "hints": args.hints,
        "exercises": list(args.exercises) if args.exercises else "all",
        "reference": f"recorded, from the release {str(args.release)!r}" if args.release else "live, from the solutions",
        "versions": {"keras-tx": _installed("keras-tx"), "keras": _installed("keras"),
                     backend: _installed(*BACKEND_PACKAGES[backend])},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "statuses": dict(collections.Counter(grade.status for grade in grades)),
    }


BACKEND_PACKAGES = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "torch": ("torch",), "jax": ("jax",)}
"""The distributions each backend may be installed as."""


def _installed(*names):
    """The version of the first of `names` that is installed, or None."""
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def _refuse_a_graded_folder(folder, overwrite):
    """Stop before grading when `folder` is a file, or holds a gradebook already and `overwrite` is off."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out must be a folder; {str(folder)!r} is a file")
    if overwrite or not (folder / "grades.csv").exists():
        return
    try:
        earlier = json.loads((folder / RUN_RECORD).read_text())
        when = f" (graded {earlier['date']} on {earlier['backend']}, seed {earlier['seed']})"
    except (OSError, ValueError, KeyError, TypeError):
        when = ""
    raise ValueError(f"--out {str(folder)!r} already holds a gradebook{when}: pass --out with another folder, "
                     "or --overwrite to replace it")


def _configured_backend():
    """The Keras backend set by ``KERAS_BACKEND`` or ``keras.json``."""
    import keras

    return keras.backend.backend()


def _positive(kind):
    """An argparse type: a positive `kind`, or one clear error naming the allowed values."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    return parse
