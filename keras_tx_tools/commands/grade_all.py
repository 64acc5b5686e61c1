"""``keras-tx grade-all``: grade every student's submission, in parallel and isolated.

Example::

    keras-tx grade-all submissions/ --backend jax --jobs 8 --plot runs/grade-all/scores.png
    keras-tx grade-all submissions/ --hints cause   # name each mistake's cause, not its fix

writes into ``--out`` (default ``runs/grade-all``): ``grades.csv`` (one row
per student), ``feedback/<student>.txt`` for the students,
``logs/<student>.log`` and ``.json`` (the grader's full output, and every
check's result by exercise, hidden tests included) for the instructor; with ``--gradescope DIR`` a
Gradescope ``results.json`` per student. Then it prints a summary with a
score histogram.
"""

import argparse
import json
import pathlib

from grader.feedback import HINT_LEVELS
from keras_tx_tools.commands import add_exercises_argument, existing_folder

BACKENDS = ("tensorflow", "torch", "jax")


def add_arguments(parser):
    """Declare the command line of ``keras-tx grade-all``."""
    parser.description = "Grade every student folder of SUBMISSIONS_DIR with `pytest grader`."
    parser.add_argument("submissions", metavar="SUBMISSIONS_DIR", type=pathlib.Path,
                        help="a folder with one subfolder per student, holding the exercise files or notebooks")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend to grade with (default: the configured Keras backend)")
    add_exercises_argument(parser, "grade")
    parser.add_argument("--seed", type=int,
                        help="the grader's seed, to reproduce a batch (default: a fresh one per batch, "
                             "the same for every hand-in)")
    parser.add_argument("--hints", choices=HINT_LEVELS, default="full",
                        help="how much the feedback gives away: full (where, the cause and the fix), cause "
                        "(where and the cause) or locate (only where); default full")
    parser.add_argument("--jobs", type=_positive(int), default=1,
                        help="submissions graded in parallel (default: 1)")
    parser.add_argument("--timeout", type=_positive(float), default=600.0,
                        help="wall-clock seconds allowed per submission (default: 600)")
    parser.add_argument("--memory", type=_positive(float), default=4.0,
                        help="GiB of memory allowed per submission (default: 4)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs", "grade-all"), metavar="DIR",
                        help="the folder for grades.csv, feedback/ and logs/ (default: runs/grade-all)")
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

    backend = args.backend or _configured_backend()
    grades = batch.grade_all(
        args.submissions,
        grading_root=args.release or release.repository_root(),
        backend=backend,
        jobs=args.jobs,
        progress=args.progress,
        exercises=args.exercises,
        timeout=args.timeout,
        memory_limit=int(args.memory * 2**30),
        seed=args.seed,
        hints=args.hints,
    )
    if not grades:
        raise ValueError(f"SUBMISSIONS_DIR must hold one folder per student; {str(args.submissions)!r} has none")
    folder = args.out
    folder.mkdir(parents=True, exist_ok=True)
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
    return 0


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
