"""``keras-tx release``: build the student bundle, and the nbgrader version of the exercises.

Example::

    keras-tx release                      # runs/student-release/: exercises, lessons, grader; no implementations
    keras-tx release bundle/              # the same, in bundle/
    keras-tx release week2/ --exercises attention   # only attention; masking, which it imports, as given code
    keras-tx release --nbgrader nbgrader/ # only regenerate the nbgrader notebooks from solutions/
    keras-tx release after/ --with-library          # after the deadline: the finished library too
    keras-tx release --nbgrader nbgrader/ --hints locate  # their checks only say where it goes wrong
"""

import pathlib

from grader.feedback import HINT_LEVELS
from keras_tx_tools.commands import add_exercises_argument


def add_arguments(parser):
    """Declare the command line of ``keras-tx release``."""
    parser.description = ("Build the student release (no solutions, no library, no reference code) "
                          "and/or the nbgrader course.")
    parser.add_argument("outdir", metavar="OUTDIR", type=pathlib.Path, nargs="?",
                        help="new or empty folder for the student bundle (default: runs/student-release, "
                             "unless only --nbgrader is given)")
    parser.add_argument("--nbgrader", type=pathlib.Path, metavar="COURSE_DIR",
                        help="also write the nbgrader course layout (source/ notebooks and config) here")
    add_exercises_argument(parser, "hand out")
    parser.add_argument("--with-library", action="store_true",
                        help="also ship the finished library keras_tx/, which answers the exercises "
                             "(for after the deadline)")
    parser.add_argument("--hints", choices=HINT_LEVELS, default="full",
                        help="how much the nbgrader test cells' messages give away: full (where, the cause and "
                        "the fix), cause (where and the cause) or locate (only where); default full")


def run(args):
    """Build what was asked for; return the exit status."""
    from grader.registry import COURSE
    from keras_tx_tools.course import nbgrader_course, release

    COURSE.subset(args.exercises)  # an unknown name fails before anything is written
    outdir = args.outdir or (None if args.nbgrader else pathlib.Path("runs", "student-release"))
    if outdir is not None:
        release.build_release(outdir, exercises=args.exercises, with_library=args.with_library)
        print(f"student release written to {outdir}; check it with: cd {outdir} && pytest grader")
    if args.nbgrader is not None:
        root = release.repository_root()
        tests = nbgrader_course.grader_tests(root, args.exercises)
        written = nbgrader_course.write_course(args.nbgrader, root / "solutions", tests, exercises=args.exercises,
                                               hints=args.hints)
        print(f"{len(written)} notebooks written to {args.nbgrader / 'source' / nbgrader_course.ASSIGNMENT}")
    return 0
