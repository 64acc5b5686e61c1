"""Grader latency: wall time of `pytest grader --solutions` per backend, imports included.

What a student waits for after typing the command: a fresh Python process
that imports pytest, the grader, Keras and the backend, then grades the
reference solutions (a fully solved course) and, as "B stubs", the untouched
exercise stubs. Each backend is timed with `--backend B` and, when all
three are selected, the whole course with `--backend all`; rounds are
interleaved. A run that does not pass (exit status other than 0) is an error,
not a sample. `--quick` only collects the tests (`--collect-only`): it times
the imports and the grader's start, and grades nothing.

On JAX the grader keeps what it compiles in a persistent cache
(`grader/compilation.py`), so a student's first run differs from the next
ones. The benchmark uses a cache folder of its own: "jax" runs find it warmed
by one untimed run (with another seed, as a student's next run has), and
"jax, first run" starts each time from an empty one.

Run it:

    python -m benchmarks grader --rounds 3 --out grader.json
"""

import os
import subprocess
import sys
import tempfile
import time

from benchmarks import harness

QUICK = {"collect_only": True, "rounds": 1}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def grader_command(backend, collect_only=False, stubs=False):
    """The command a student runs, as an argument list for `subprocess`.

    `stubs` grades the untouched exercises instead of the solutions.
    """
    command = [sys.executable, "-m", "pytest", "grader", *([] if stubs else ["--solutions"]),
               "--backend", backend, "-q", "-p", "no:cacheprovider"]
    return command + ["--collect-only"] if collect_only else command


def time_grader(backend, collect_only=False, threads=None, stubs=False, jax_cache=None):
    """Seconds that one `pytest grader --solutions --backend BACKEND` run takes.

    `jax_cache` is the folder of JAX's persistent compilation cache (None: a fresh, empty one).
    """
    env = {name: value for name, value in os.environ.items() if name != "KERAS_BACKEND"}
    env.update(harness.thread_environment(threads))
    with tempfile.TemporaryDirectory() as empty:
        env["KERAS_TX_JAX_CACHE"] = jax_cache or empty
        start = time.perf_counter()
        result = subprocess.run(grader_command(backend, collect_only, stubs), cwd=ROOT, env=env,
                                capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise harness.BenchmarkError(
            f"pytest grader --backend {backend} exited with status {result.returncode}:\n"
            + (result.stdout + result.stderr)[-3000:])
    return seconds


def add_arguments(parser):
    parser.add_argument("--collect-only", action="store_true",
                        help="time the start and the collection of the grader only")
    parser.set_defaults(rounds=3)


def main(args):
    if not os.path.isdir(os.path.join(ROOT, "grader")):
        raise ValueError(f"there is no grader/ folder in {ROOT}")
    contenders = {backend: (backend, False) for backend in args.backends}
    if not args.collect_only:
        contenders.update({f"{backend} stubs": (backend, True) for backend in args.backends})
    if "jax" in args.backends and not args.collect_only:
        contenders["jax, first run"] = ("jax", False)
    if set(args.backends) == set(harness.BACKENDS):
        contenders["all"] = ("all", False)
    runs = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as jax_cache:
        if "jax, first run" in contenders:
            time_grader("jax", args.collect_only, args.threads, jax_cache=jax_cache)  # the warm-up
        for _ in range(args.rounds):
            for name, (backend, stubs) in contenders.items():
                cache = None if name == "jax, first run" else jax_cache
                runs[name].append({"seconds": time_grader(backend, args.collect_only, args.threads, stubs, cache)})
    summary = {backend: harness.summarize([r["seconds"] for r in samples])
               for backend, samples in runs.items()}
    what = "collection only" if args.collect_only else "grading the solutions"
    print(f"\npytest grader --solutions --backend B ({what}), wall seconds")
    print(harness.format_table(["--backend", "median s", "min s", "max s"],
                               [[b, s["median"], s["min"], s["max"]] for b, s in summary.items()]))
    config = {"command": " ".join(grader_command("B", args.collect_only)[1:]),
              "rounds": args.rounds, "backends": list(contenders), "threads": args.threads}
    return harness.write_report(args.out, "grader", config, runs, summary)
