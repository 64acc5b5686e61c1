"""Training on a busy machine: `keras-tx train reverse` on PyTorch beside busy processes, old threads against new.

`--busy` processes spin on the CPU for the whole benchmark (a machine that
others share). Then, round after round, two `keras-tx train reverse` runs on
PyTorch, one after the other:

- `before`: PyTorch's own default, one intra-op thread per core (what
  `keras-tx train` did before it counted the free cores; `--threads CORES`);
- `after`: `keras-tx train`'s default now, at most the free cores (the cores
  minus the load average, at least one; `keras_tx_tools.threads`).

Each sample is the run's training time (`wall_time_s` of its `metrics.json`:
the steps and the validation, not the start-up), and the summary is the ratio
before / after of each round. `OMP_NUM_THREADS` is removed from the runs'
environment, since it would set the "before" threads too. The report gives
the load average measured before and after the busy processes started.

Run it:

    python -m benchmarks threads --busy 4 --steps 60 --rounds 2 --out threads.json
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import harness

QUICK = dict(busy=1, steps=2, settle=0, rounds=1)
CONTENDERS = ("before", "after")


def add_arguments(parser):
    parser.add_argument("--busy", type=int, default=4, help="processes that keep a core busy (default: 4)")
    parser.add_argument("--steps", type=int, default=60, help="training steps of each run (default: 60)")
    parser.add_argument("--settle", type=float, default=60,
                        help="seconds to let the load average see the busy processes first (default: 60)")


def main(args):
    if args.backends != ("torch",) and "torch" not in args.backends:
        raise ValueError("the thread benchmark runs on PyTorch, the backend that reads its thread count at run time")
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(args.settle)
        load_during = os.getloadavg()
        samples = {name: [] for name in CONTENDERS}
        for _ in range(args.rounds):
            for name in CONTENDERS:
                samples[name].append(_train_seconds(args.steps, threads=cores if name == "before" else None))
                print(f"{name}: {samples[name][-1]:.1f} s", flush=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    summary = {
        "seconds": {name: harness.summarize(values) for name, values in samples.items()},
        "before/after": harness.paired_ratio(samples["before"], samples["after"]),
        "load_average_before_busy": load_before, "load_average_with_busy": load_during,
        "threads_before": cores,
    }
    print(f"\n`keras-tx train reverse --steps {args.steps}` on PyTorch beside {args.busy} busy processes, "
          f"{cores} cores (load average {load_during[0]:.1f} with them, {load_before[0]:.1f} before)")
    print(harness.format_table(
        ["threads", "median training time (s)", "samples (s)"],
        [[f"{name} ({cores if name == 'before' else 'free cores'})", summary["seconds"][name]["median"],
          ", ".join(f"{value:.1f}" for value in samples[name])] for name in CONTENDERS]))
    print(f"before / after, per round: median {summary['before/after']['median']:.2f}")
    config = {"busy": args.busy, "steps": args.steps, "settle_s": args.settle, "rounds": args.rounds}
    harness.write_report(args.out, "threads", config, samples, summary)


def _train_seconds(steps, threads):
    """Training time of one `keras-tx train reverse` on PyTorch (`threads` None: the command's default)."""
    env = {name: value for name, value in os.environ.items() if name != "OMP_NUM_THREADS"}
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "keras_tx_tools", "train", "reverse", "--backend", "torch",
                   "--steps", str(steps), "--epochs", "1", "--num-validation", "64", "--out", out]
        if threads is not None:
            command += ["--threads", str(threads)]
        process = subprocess.run(command, env=env, capture_output=True, text=True)
        if process.returncode:
            raise harness.BenchmarkError(f"{' '.join(command)} failed:\n{process.stdout[-2000:]}{process.stderr[-2000:]}")
        with open(os.path.join(out, "metrics.json")) as file:
            return json.load(file)["wall_time_s"]
