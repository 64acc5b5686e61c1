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
import importlib.util
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
        choose_installed_backend()
        return ()
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = requested
        return ()
    import keras

    return () if keras.backend.backend() == requested else (requested,)


def choose_installed_backend():
    """Sets ``KERAS_BACKEND`` to an installed backend when none is named and Keras' default is missing.

    Without ``KERAS_BACKEND``, Keras takes the backend in its ``keras.json``, else TensorFlow. The
    light student install has JAX only (or PyTorch), so there the grader picks the first installed
    of `BACKENDS` instead of failing on a missing TensorFlow. A backend named in ``KERAS_BACKEND``
    is left alone, and so is everything once Keras is imported.
    """
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return
    config = pathlib.Path(os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras") / "keras.json"
    try:
        configured = json.loads(config.read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        configured = None
    chosen = configured or "tensorflow"
    installed = [backend for backend in BACKENDS if is_installed(backend)]
    if chosen in BACKENDS and chosen not in installed and installed:
        os.environ["KERAS_BACKEND"] = installed[0]


def is_installed(backend):
    """Whether the package of `backend` can be imported (it is not imported here)."""
    return importlib.util.find_spec(backend) is not None


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
