"""Run one untrusted command under a wall-clock limit and a memory limit.

A student's code may loop forever, allocate without end or start processes of
its own. :func:`run_limited` contains all three: the command runs in a new
process group that is killed as a whole when the time is up (and in any case
once the command returns, so nothing it started outlives it), and its data
segment is capped with ``RLIMIT_DATA``, so an allocation beyond the limit
raises ``MemoryError`` inside the student's code instead of taking the machine
down.

``RLIMIT_DATA`` is used rather than ``RLIMIT_AS`` on purpose: JAX, TensorFlow
and PyTorch reserve far more virtual address space than they ever touch, so an
address-space limit breaks them at import, while the data limit only counts
memory that is actually requested for writing.

Example:

>>> import sys
>>> outcome = run_limited(
...     [sys.executable, "-c", "while True: pass"], timeout=1, memory_limit=2**30
... )
>>> outcome.timed_out
True
"""

import dataclasses
import os
import resource
import signal
import subprocess
import time


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a limited command ended.

    Attributes:
        returncode: the exit status, negative for a signal (as in `subprocess`);
            ``None`` when the command was killed for running out of time.
        timed_out: whether the wall-clock limit was reached.
        seconds: the wall-clock time the command ran.
    """

    returncode: int | None
    timed_out: bool
    seconds: float


def run_limited(command, *, timeout, memory_limit, cwd=None, env=None, log_path=None):
    """Run `command` with at most `timeout` seconds and `memory_limit` bytes of data.

    Args:
        command: the argument list to execute.
        timeout: wall-clock seconds before the whole process group is killed.
        memory_limit: bytes of data (heap and private mappings) the command may use.
        cwd: the working directory of the command.
        env: the complete environment of the command.
        log_path: file that receives the command's stdout and stderr
            (discarded when ``None``).

    Returns:
        An `Outcome`.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if not memory_limit > 0:
        raise ValueError(f"memory_limit must be a positive number of bytes, got {memory_limit!r}")
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    start = time.monotonic()
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _limit_data(process.pid, memory_limit)
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _kill_group(process.pid)
            process.wait()
    finally:
        if log_path:
            log.close()
    return Outcome(returncode, returncode is None, time.monotonic() - start)


def _limit_data(pid, limit):
    """Cap the data segment of the running process `pid` (a no-op once it has exited)."""
    try:
        resource.prlimit(pid, resource.RLIMIT_DATA, (limit, limit))
    except ProcessLookupError:
        pass


def _kill_group(pid):
    """Kill every process of the group led by `pid`, if any is left."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
