"""What every benchmark shares: worker processes, interleaved rounds, statistics, reports.

Keras reads `KERAS_BACKEND` once, at import, so each (backend, implementation)
pair lives in its own worker process (`benchmarks.worker`). The workers start
and warm up once; then `interleave` asks each in turn for one repetition, round
after round, so slow drift of a shared machine touches every contender alike.
Only one worker computes at a time. Every sample is kept in the JSON report,
next to the machine and the library versions that produced it.

Example:

>>> workers = start(("benchmarks.training",
...                  {"implementation": "native_torch", "shape": "tiny", "steps": 2}))
>>> samples = interleave(workers, rounds=2)
>>> [len(s) for s in samples.values()]
[2]
>>> close_all(workers)
"""

import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

BACKENDS = ("torch", "tensorflow", "jax")
LIBRARIES = ("keras", "keras-tx", "torch", "tensorflow-cpu", "tensorflow", "jax",
             "jaxlib", "numpy")


class BenchmarkError(RuntimeError):
    """A measured process failed; the message carries the end of its output."""


class Worker:
    """One benchmark job in its own Python process, answering requests in turn.

    The process starts at once; `wait_ready` waits for its job to be built and
    warmed up, so several workers can warm up side by side (see `start`).

    Args:
        module: the benchmark module that defines `Job` (e.g. "benchmarks.training").
        config: keyword arguments for `Job(**config)`; it builds and warms up.
        backend: the `KERAS_BACKEND` of the process.
        label: the name this worker has in tables and reports.
        threads: CPU threads of every framework in the process (`thread_environment`).
    """

    def __init__(self, module, config, backend="torch", label=None, threads=None):
        self.label = label or f"{config.get('implementation', module)}[{backend}]"
        self.info = None
        self._stderr = tempfile.TemporaryFile("w+")
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
                   **thread_environment(threads))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", module, json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, text=True, cwd=os.path.dirname(os.path.dirname(__file__)),
        )

    def wait_ready(self):
        """Wait until the job is built and warmed up; returns (and keeps) its `info`."""
        self.info = self._receive()
        return self.info

    def request(self, **arguments):
        """Send `Job.run(**arguments)` to the worker and return its answer (a dict)."""
        self._process.stdin.write(json.dumps(arguments) + "\n")
        self._process.stdin.flush()
        return self._receive()

    def _receive(self):
        line = self._process.stdout.readline()
        answer = json.loads(line) if line else {"error": "the worker exited"}
        if "error" in answer:
            self._stderr.seek(0)
            log = self._stderr.read()[-4000:]
            self.close()
            raise BenchmarkError(f"{self.label}: {answer['error']}\n{log}")
        return answer

    def close(self):
        """End the process (it exits when its stdin closes); closing twice is harmless."""
        if self._stderr.closed:
            return
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(timeout=60)
        self._stderr.close()


def thread_environment(threads):
    """Environment variables that give PyTorch, TensorFlow and XLA `threads` CPU threads.

    None leaves each framework its own default (about one thread per core).

    >>> thread_environment(1)["OMP_NUM_THREADS"]
    '1'
    """
    if threads is None:
        return {}
    xla = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
    return {"OMP_NUM_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": str(threads),
            "XLA_FLAGS": xla + f"intra_op_parallelism_threads={threads}"}


def start(*worker_arguments, threads=None):
    """Start one `Worker(*arguments)` per argument tuple; they warm up side by side.

    Warm-up is not timed, so it may share the machine; the timed repetitions
    of `interleave` run one worker at a time.
    """
    workers = [Worker(*arguments, threads=threads) for arguments in worker_arguments]
    try:
        for worker in workers:
            worker.wait_ready()
    except BenchmarkError:
        close_all(workers)
        raise
    return workers


def peak_rss_mb():
    """The most memory this process has held so far (peak resident set), in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def close_all(workers):
    for worker in workers:
        worker.close()


def interleave(workers, rounds, **arguments):
    """Ask each worker for one repetition in turn, `rounds` times.

    Returns {label: [answer of round 1, answer of round 2, ...]}.
    """
    samples = {worker.label: [] for worker in workers}
    for round_index in range(rounds):
        print(f"round {round_index + 1}/{rounds}", file=sys.stderr, flush=True)
        for worker in workers:
            samples[worker.label].append(worker.request(**arguments))
    return samples


def summarize(values):
    """Median and spread of a list of numbers: {"median", "min", "max", "spread"}.

    `spread` is (max - min) / median, the relative width of all the samples.

    >>> summarize([1.0, 2.0, 4.0])["spread"]
    1.5
    """
    median = statistics.median(values)
    low, high = min(values), max(values)
    return {"median": median, "min": low, "max": high,
            "spread": (high - low) / median if median else float("nan")}


def paired_ratio(numerators, denominators):
    """Summary of per-round ratios numerators[i] / denominators[i].

    Samples from the same round ran seconds apart, so their ratio cancels the
    drift of a shared machine better than a ratio of medians does.
    """
    return summarize([a / b for a, b in zip(numerators, denominators)])


def machine():
    """The machine, the Python and the library versions a report was measured with."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_report(path, benchmark, config, results, summary):
    """Write the JSON report: machine, configuration, every sample and the summary."""
    report = {"benchmark": benchmark, "machine": machine(), "config": config,
              "summary": summary, "samples": results}
    with open(path, "w") as file:
        json.dump(report, file, indent=1)
    return report


def format_table(header, rows):
    """Rows of cells as an aligned text table (3 significant digits, at least).

    >>> print(format_table(["model", "tokens/s", "ratio"], [["a", 12345.6, 0.91234]]))
    model  tokens/s  ratio
    -----  --------  -----
    a      12,346    0.912
    """
    cells = [[_cell(value) for value in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value):
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def parse_backends(text):
    """Comma-separated backend names -> tuple; "all" means every backend.

    >>> parse_backends("jax,torch")
    ('jax', 'torch')
    """
    names = BACKENDS if text == "all" else tuple(text.split(","))
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise ValueError(f"--backends: unknown backend {unknown[0]!r}; "
                         f"choose from {', '.join(BACKENDS)} or 'all'")
    return names
