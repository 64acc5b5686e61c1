"""``keras-tx release``: build the student bundle, and the nbgrader version of the exercises.

Example::

    keras-tx release                      # runs/student-release/: exercises, lessons, grader, library; no solutions
    keras-tx release bundle/              # the same, in bundle/
    keras-tx release --nbgrader nbgrader/ # only regenerate the nbgrader notebooks from solutions/
    keras-tx release --nbgrader nbgrader/ --hints locate  # their checks only say where it goes wrong
"""

import pathlib

from grader.feedback import HINT_LEVELS


def add_arguments(parser):
    """Declare the command line of ``keras-tx release``."""
    parser.description = "Build the student release (no solution code) and/or the nbgrader course."
    parser.add_argument("outdir", metavar="OUTDIR", type=pathlib.Path, nargs="?",
                        help="new or empty folder for the student bundle (default: runs/student-release, "
                             "unless only --nbgrader is given)")
    parser.add_argument("--nbgrader", type=pathlib.Path, metavar="COURSE_DIR",
                        help="also write the nbgrader course layout (source/ notebooks and config) here")
    parser.add_argument("--hints", choices=HINT_LEVELS, default="full",
                        help="how much the nbgrader test cells' messages give away: full (where, the cause and "
                        "the fix), cause (where and the cause) or locate (only where); default full")


def run(args):
    """Build what was asked for; return the exit status."""
    from keras_tx_tools.course import nbgrader_course, release

    outdir = args.outdir or (None if args.nbgrader else pathlib.Path("runs", "student-release"))
    if outdir is not None:
        release.build_release(outdir)
        print(f"student release written to {outdir}; check it with: cd {outdir} && pytest grader")
    if args.nbgrader is not None:
        root = release.repository_root()
        written = nbgrader_course.write_course(args.nbgrader, root / "solutions", nbgrader_course.grader_tests(root),
                                               hints=args.hints)
        print(f"{len(written)} notebooks written to {args.nbgrader / 'source' / nbgrader_course.ASSIGNMENT}")
    return 0
