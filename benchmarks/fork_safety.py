"""Why only PyTorch's graders fork warm: a child forked before and after the backend's first computation.

A warm grader (`grader.student_process`) forks one fresh child per hand-in. What the
parent has already done, the child need not do again: on PyTorch the parent trains a
tiny model first, so every child starts with PyTorch's first-use costs paid. On JAX and
TensorFlow the parent stops after the import, and each child pays again for everything
it runs, above all, on JAX, compiling each operation's program. This benchmark measures
whether the parent could do more.

For each backend, in a process of its own, the parent forks children that each run the
same small workload (build, call and train a tiny Dense model, then one operation on a
shape nobody used before), and times them:

- `after import`: forked right after ``import keras``, as every grader forks today;
- `after a computation`: forked after the parent ran that workload itself, as PyTorch's
  grader does. A child that has not finished after `--child-timeout` seconds is killed
  and counted as hung: a process whose backend has started threads has only the forking
  thread left in the child, and a backend that waits on one of its pools never returns.

Each backend runs with one CPU thread (`--threads`, default 1), as the graders do: PyTorch's
warm process sets one thread before it trains, since with more its children hang as well
(``--threads 2`` shows it).

Run it:

    python -m benchmarks fork-safety --rounds 3 --out fork-safety.json
"""

import json
import os
import subprocess
import sys
import time

from benchmarks import harness

QUICK = dict(rounds=1, child_timeout=20.0)
CONTENDERS = ("after import", "after a computation")


def add_arguments(parser):
    parser.add_argument("--child-timeout", type=float, default=60.0,
                        help="seconds after which a child counts as hung (default: 60)")


def main(args):
    if args.child_timeout <= 0:
        raise ValueError(f"--child-timeout must be a positive number of seconds, got {args.child_timeout:g}")
    threads = args.threads or 1
    samples, hung = {}, {}
    for backend in args.backends:
        command = [sys.executable, "-m", "benchmarks.fork_safety", str(args.rounds), str(args.child_timeout)]
        environment = dict(os.environ, **harness.thread_environment(threads), KERAS_BACKEND=backend)
        process = subprocess.run(command, env=environment, capture_output=True, text=True)
        if process.returncode:
            raise harness.BenchmarkError(f"the {backend} parent failed:\n{process.stderr[-2000:]}")
        result = json.loads(process.stdout.splitlines()[-1])
        samples[backend], hung[backend] = result["seconds"], result["hung"]
    summary = {backend: {"hung": hung[backend],
                         **{name: harness.summarize(values) for name, values in samples[backend].items() if values}}
               for backend in args.backends}
    print(f"\nA child forked per hand-in: the same workload, timed from the fork to the child's exit "
          f"({args.rounds} children each, {threads} thread(s); hung: not done after {args.child_timeout:g} s)")
    print(harness.format_table(
        ["backend", *(f"{name}: median s" for name in CONTENDERS), "hung (after a computation)"],
        [[backend, *(summary[backend].get(name, {}).get("median", "-") for name in CONTENDERS),
          f"{hung[backend]} of {args.rounds}"] for backend in args.backends]))
    config = {"rounds": args.rounds, "child_timeout_s": args.child_timeout, "threads": threads}
    harness.write_report(args.out, "fork-safety", config, samples, summary)


def workload(keras, shape):
    """Build, call and train a tiny model, then one operation on `shape` (a program no one compiled yet)."""
    import numpy as np

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((16, 4), "float32"), np.zeros((16, 4), "float32"), batch_size=8, verbose=0)
    keras.ops.convert_to_numpy(keras.ops.softmax(keras.ops.ones(shape)))


def child_seconds(keras, shape, timeout):
    """Fork a child that runs `workload`; its seconds from fork to exit, or None when it hung."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            workload(keras, shape)
        finally:
            os._exit(0)
    while time.perf_counter() - start < timeout:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            if not os.WIFEXITED(status) or os.WEXITSTATUS(status):
                raise harness.BenchmarkError(f"a child ended with status {status}")
            return time.perf_counter() - start
        time.sleep(0.005)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


def parent(rounds, timeout):
    """One backend (`KERAS_BACKEND`): `rounds` children forked after the import, then as many after a computation."""
    import warnings

    warnings.simplefilter("ignore")  # JAX warns that fork and threads do not mix: that is what is measured
    import keras

    seconds = {name: [] for name in CONTENDERS}
    hung = 0
    for index in range(rounds):
        seconds["after import"].append(child_seconds(keras, (3, 5 + index), timeout))
    workload(keras, (3, 4))
    for index in range(rounds):
        taken = child_seconds(keras, (7, 5 + index), timeout)
        if taken is None:
            hung += 1
        else:
            seconds["after a computation"].append(taken)
    print(json.dumps({"seconds": seconds, "hung": hung}))


if __name__ == "__main__":
    parent(int(sys.argv[1]), float(sys.argv[2]))
