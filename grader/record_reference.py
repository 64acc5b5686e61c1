"""Record the reference cases, so the grader can run without the solutions (student release).

Runs the whole grader on ``solutions/`` with a fixed seed and saves the inputs, the weights
and the reference outputs of every comparison into ``grader/reference/<exercise>.npz``.
Run it from the repository root after changing the solutions or a check::

    python -m grader.record_reference [--backend tensorflow|torch|jax] [--exercises NAME,...]

It exits with status 1 unless the solutions score full marks.
"""

import argparse
import json
import pathlib
import sys
import tempfile

import pytest

from grader.registry import COURSE

GRADER = pathlib.Path(__file__).resolve().parent
RECORDED_SEED = 20_240_601
"""The seed of the recorded inputs: fixed, so a new recording draws the same inputs."""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grader.record_reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "torch", "jax"), help="backend to record on")
    parser.add_argument("--out", default=str(GRADER / "reference"), help="folder of the recordings")
    parser.add_argument("--exercises", type=lambda text: text.split(","), metavar="NAME,...",
                        help="record only these exercises, a new one say (default: all); the others' recordings stay")
    args = parser.parse_args(argv)
    try:
        COURSE.subset(args.exercises)
    except ValueError as error:
        parser.error(str(error))
    checks = [str(GRADER / f"test_{name}.py") for name in args.exercises] if args.exercises else [str(GRADER)]
    with tempfile.TemporaryDirectory() as folder:
        report_path = pathlib.Path(folder, "report.json")
        options = ["--backend", args.backend] if args.backend else []
        pytest.main([*checks, "-q", "-p", "no:cacheprovider", "--solutions", "--reference", "live",
                     "--seed", str(RECORDED_SEED), "--record-reference", args.out,
                     "--grade-json", str(report_path), *options])
        report = json.loads(report_path.read_text()) if report_path.is_file() else None
    if not report or report["total"] != report["max"]:
        print("the solutions do not score full marks: the recording is not trustworthy", file=sys.stderr)
        return 1
    print(f"recorded the reference cases in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
