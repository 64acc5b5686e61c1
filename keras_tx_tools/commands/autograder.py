"""``keras-tx autograder``: build a Gradescope autograder bundle for the course.

Example::

    keras-tx autograder autograder.zip --backend torch [--hints full|cause|locate]
    keras-tx autograder week2.zip --exercises attention   # grades attention; masking is given

writes ``autograder.zip`` (``setup.sh``, ``run_autograder`` and the grader with the solutions)
to upload as a Gradescope programming assignment's autograder.
"""

import pathlib

from grader.feedback import HINT_LEVELS
from keras_tx_tools.commands import add_exercises_argument

BACKENDS = ("torch", "jax", "tensorflow")


def add_arguments(parser):
    """Declare the command line of ``keras-tx autograder``."""
    parser.description = "Build a Gradescope autograder bundle that grades each submission like `keras-tx grade-all`."
    parser.add_argument("out", metavar="OUT.zip", type=pathlib.Path, help="the bundle to write")
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="Keras backend the autograder grades with (default: torch)")
    add_exercises_argument(parser, "grade")
    parser.add_argument("--hints", choices=HINT_LEVELS, default="full",
                        help="how much the feedback gives away: full (where, the cause and the fix), cause "
                        "(where and the cause) or locate (only where); default full")


def run(args):
    """Write the bundle; return the exit status."""
    from keras_tx_tools.course import autograder

    autograder.build_bundle(args.out, backend=args.backend, exercises=args.exercises, hints=args.hints)
    print(f"Gradescope autograder written to {args.out}: upload it as the assignment's autograder")
    return 0
