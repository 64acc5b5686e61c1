"""Command line: `python -m benchmarks BENCHMARK [--quick] [--out FILE] [options]`.

Each benchmark prints its tables and writes a JSON report (machine, versions,
configuration, every sample, summary). `--quick` runs a seconds-long smoke
version that checks the harness, not the speed.

    python -m benchmarks training --out training.json
    python -m benchmarks generation --backends jax
    python -m benchmarks accuracy --data path/to/tinyshakespeare.txt
    python -m benchmarks accelerator --out accelerator.json    # on a GPU machine
    python -m benchmarks distribution --out distribution.json  # 1, 2, 4, 8 devices (JAX)
    python -m benchmarks grade-all --students 300 --jobs 2      # a class graded, sandboxed
    python -m benchmarks threads --busy 4 --rounds 2            # training beside 4 busy processes, PyTorch
    python -m benchmarks fork-safety --rounds 3                 # can a warm grader fork after computing?
"""

import argparse
import sys

from benchmarks import (
    accelerator, accuracy, distribution, fork_safety, generation, grade_all, grader_latency, harness, memory, threads,
    training,
)

BENCHMARKS = {
    "training": training,
    "memory": memory,
    "generation": generation,
    "grader": grader_latency,
    "grade-all": grade_all,
    "accuracy": accuracy,
    "accelerator": accelerator,
    "distribution": distribution,
    "threads": threads,
    "fork-safety": fork_safety,
}


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="benchmark", required=True)
    subparsers = {}
    for name, module in BENCHMARKS.items():
        command = subparsers[name] = commands.add_parser(name, help=module.__doc__.split("\n")[0],
                                      description=module.__doc__.split("\n")[0])
        command.add_argument("--quick", action="store_true",
                             help="a smoke run of a few seconds: checks the harness, not speed")
        command.add_argument("--out", default=f"{name}.json", help="JSON report (default: %(default)s)")
        command.add_argument("--backends", default="all",
                             help="comma-separated from torch, tensorflow, jax, or all (default)")
        command.add_argument("--rounds", type=int, default=5,
                             help="interleaved repetitions per contender (default: 5)")
        command.add_argument("--threads", type=int, default=None,
                             help="CPU threads per framework (default: each framework's own)")
        module.add_arguments(command)
    args = parser.parse_args(argv)
    module = BENCHMARKS[args.benchmark]
    if args.quick:  # the quick values become defaults: explicit options still win
        subparsers[args.benchmark].set_defaults(threads=1, **module.QUICK)
        args = parser.parse_args(argv)
    try:
        args.backends = harness.parse_backends(args.backends)
        if args.rounds < 1:
            raise ValueError(f"--rounds must be at least 1, got {args.rounds}")
        if args.threads is not None and args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
    except ValueError as error:
        parser.error(str(error))
    return module, args


def main(argv=None):
    module, args = parse_arguments(argv)
    try:
        module.main(args)
    except (ValueError, harness.BenchmarkError) as error:
        sys.exit(f"python -m benchmarks {args.benchmark}: {error}")
    print(f"\nReport written to {args.out}")


if __name__ == "__main__":
    main()
