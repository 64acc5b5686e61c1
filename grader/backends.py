"""Grading on a backend this process cannot switch to: one ``pytest grader`` process per backend.

Keras reads ``KERAS_BACKEND`` once, when it is first imported. A process that has already
imported Keras with another backend, or ``--backend all``, grades by starting one ``pytest
grader`` subprocess per backend, as many at a time as there are CPU cores, and reads back
each one's ``--grade-json`` report.

Example::

    runs = grade_in_subprocesses(("torch", "jax"), ["--solutions", "--seed", "7"])
    runs["jax"].report["total"], runs["jax"].seconds
"""

import concurrent.futures
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

BACKENDS = ("tensorflow", "torch", "jax")
ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class BackendRun:
    """One backend's grading subprocess: its report (None if it wrote none), output and time."""

    backend: str
    report: dict
    output: str
    returncode: int
    seconds: float


def backends_to_spawn(requested):
    """The backends to grade in subprocesses for ``--backend requested`` (None: this process's).

    When this process can grade `requested` itself (Keras is not imported yet), sets
    ``KERAS_BACKEND`` and returns ``()``.
    """
    if requested == "all":
        return BACKENDS
    if requested is None:
        return ()
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = requested
        return ()
    import keras

    return () if keras.backend.backend() == requested else (requested,)


def grade_in_subprocesses(backends, options):
    """Grade on each of `backends` in its own ``pytest grader`` process; ``{backend: BackendRun}``.

    Args:
        backends: backend names.
        options: command-line options passed on to every process (``--seed N``, ...).
    """
    workers = max(1, min(len(backends), os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as folder, concurrent.futures.ThreadPoolExecutor(workers) as pool:
        runs = pool.map(lambda backend: _grade(backend, options, pathlib.Path(folder)), backends)
        return {run.backend: run for run in runs}


def _grade(backend, options, folder):
    report = folder / f"{backend}.json"
    command = [sys.executable, "-m", "pytest", str(ROOT / "grader"), "-q", "-p", "no:cacheprovider",
               *options, "--backend", backend, "--grade-json", str(report)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "KERAS_BACKEND": backend},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    graded = json.loads(report.read_text()) if report.is_file() else None
    return BackendRun(backend, graded, result.stdout, result.returncode, seconds)
