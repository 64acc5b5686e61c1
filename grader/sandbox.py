"""Start the process that runs students' code, inside a bubblewrap sandbox when there is one.

The sandbox (`bwrap`, the Debian package ``bubblewrap``) gives that process a root of its own:
the Python environment read-only, of the grader only the modules that serve the student's side
of the stand-in protocol (`CHILD_MODULES`, read-only), an empty private ``/tmp``, no network,
its own process namespace. No course repository, no solutions, no checks, no reference, no
recordings, no other student's files: they are simply not there. When run as root each child
takes a user id and a ``/tmp`` of its own before any student code runs (`grader.student_process`).

Where bubblewrap is missing or cannot create namespaces, `start` runs the same process without
it (`isolated` is then ``False``) and warns loudly: the student's code then still runs in a
separate, limited process, but can read whatever the grader's user can.

Example::

    sandbox = StudentProcess.start(backend="torch")
    connection = sandbox.fork(limits)      # a fresh child for one hand-in
    ...
    status, cpu_seconds = sandbox.reap()    # the child and all it started are gone
"""

import contextlib
import functools
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings

from grader.compilation import cache_folder
from grader.failures import GraderError
from grader.limits import alarm_held
from grader.student_process import empty_folder

GRADER = pathlib.Path(__file__).resolve().parent
STARTUP_SECONDS = 300
"""How long the process may take to import Keras before the grader gives up."""
REPLY_SECONDS = 120
"""How long the process may take to fork a child, or to end one with everything it started."""

CHILD_MODULES = ("__init__.py", "student_process.py", "wire.py", "submission.py", "failures.py", "feedback.py", "seeding.py",
                 "limits.py", "screening.py", "registry.py", "gradebook.py", "precision.py", "compilation.py", "eager_build.py")
"""The grader's modules the sandbox holds: what loads a hand-in and serves the grader's requests, and
what they import. Nothing that implements or checks an exercise: a module not named here is not there."""

PASSED_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
"""Environment variables the student's process inherits; everything else is dropped."""


class NotIsolatedWarning(UserWarning):
    """Students' code runs without the sandbox: it can read what the grader's user can."""


@functools.cache
def bubblewrap_works():
    """Whether `bwrap` is installed and can create the namespaces the sandbox needs."""
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(["bwrap", *_mounts(), *NAMESPACES, "true"], capture_output=True)
    return probe.returncode == 0


NAMESPACES = ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
              "--die-with-parent", "--new-session")


def _mounts():
    """bwrap arguments: the system's libraries and the Python environment, read-only; nothing else."""
    arguments = ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = pathlib.Path("/", name)
        if path.is_symlink():
            arguments += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            arguments += ["--ro-bind", str(path), str(path)]
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        arguments += ["--ro-bind-try", path, path]
    for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix}):
        arguments += [*_parents(prefix), "--ro-bind", prefix, prefix]
    return arguments


def _parents(path):
    """bwrap arguments creating the folders above `path`, readable by all (bwrap makes them private)."""
    arguments = []
    for parent in reversed(pathlib.PurePosixPath(path).parents[:-1]):
        arguments += ["--perms", "0755", "--dir", str(parent)]
    return arguments


STUDENT_TOOLS = ("keras_tx_tools/gpt2/__init__.py", "keras_tx_tools/gpt2/pytorch_bin.py")
"""The project's files a lesson tells students to import (the capstone reads ``pytorch_model.bin``
with `keras_tx_tools.gpt2.pytorch_bin`): the sandbox holds them too, read-only."""

GRADER_IN_SANDBOX = pathlib.PurePosixPath("/grading/grader")
"""Where the sandboxed process sees the grader's `CHILD_MODULES` (read-only), and its ``checkpoints/``."""


def _sandboxed(command, backend):
    """`command` inside bubblewrap, seeing the grader's `CHILD_MODULES` and its checkpoints at
    `GRADER_IN_SANDBOX` (and on JAX its compilation cache, read-only, in /grading/jax-cache)."""
    mounts = _mounts() + ["--perms", "0755", "--dir", str(GRADER_IN_SANDBOX.parent),
                          "--perms", "0755", "--dir", str(GRADER_IN_SANDBOX)]
    for name in CHILD_MODULES:
        mounts += ["--ro-bind", str(GRADER / name), str(GRADER_IN_SANDBOX / name)]
    if (GRADER / "checkpoints").is_dir():  # the capstone's GPT-2 checkpoints, which the student's code reads
        mounts += ["--ro-bind", str(GRADER / "checkpoints"), str(GRADER_IN_SANDBOX / "checkpoints")]
    for name in (name for name in STUDENT_TOOLS if (GRADER.parent / name).is_file()):  # as the lessons ask
        mounts += [*_parents(str(GRADER_IN_SANDBOX.parent / name)), "--ro-bind", str(GRADER.parent / name),
                   str(GRADER_IN_SANDBOX.parent / name)]
    cache = cache_folder() if backend == "jax" else None
    if cache is not None:
        with contextlib.suppress(OSError):  # the grader fills it (`grader.compilation.use_compilation_cache`)
            cache.mkdir(parents=True, exist_ok=True)
    if cache is not None and cache.is_dir():
        mounts += ["--ro-bind", str(cache), "/grading/jax-cache"]
        command = [*command, "--jax-cache", "/grading/jax-cache"]
    mounts += ["--chdir", "/tmp", "--setenv", "PYTHONPATH", "/grading", "--setenv", "HOME", "/tmp"]
    return ["bwrap", *mounts, *NAMESPACES, *command, "--own-pid-namespace", "--scratch", "/tmp"]


class StudentProcess:
    """The warm process that forks one child per hand-in (`grader.student_process`)."""

    def __init__(self, process, control, isolated, scratch):
        self.process = process
        self.control = control
        self.isolated = isolated
        self.scratch = scratch

    @classmethod
    def start(cls, backend, isolate=True):
        """Start the process for `backend`; in bubblewrap when `isolate` and it works, else warn."""
        isolated = isolate and bubblewrap_works()
        if isolate and not isolated:
            warnings.warn("bubblewrap (bwrap) is missing or cannot create namespaces here: students' code runs "
                          "in a separate process but NOT ISOLATED; it can read what this user can "
                          "(install the 'bubblewrap' package)", NotIsolatedWarning, stacklevel=2)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        scratch = None if isolated else tempfile.mkdtemp(prefix="keras-tx-student-")
        command = [sys.executable, "-s", "-P", "-m", "grader.student_process", str(theirs.fileno())]
        env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
        env.update(KERAS_BACKEND=backend, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3",
                   XLA_PYTHON_CLIENT_PREALLOCATE="false", TF_FORCE_GPU_ALLOW_GROWTH="true",
                   PYTHONDONTWRITEBYTECODE="1")
        if isolated:
            command = _sandboxed(command, backend)
        else:
            command += ["--scratch", scratch]
            env.update(PYTHONPATH=str(GRADER.parent), HOME=scratch, TMPDIR=scratch)
        startup_log = tempfile.TemporaryFile()
        process = subprocess.Popen(command, pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=startup_log, cwd=scratch or "/")
        theirs.close()
        ours.settimeout(STARTUP_SECONDS)
        try:
            ready = ours.recv(64)
        except OSError:
            ready = b""
        ours.settimeout(None)
        if ready != b"ready":
            process.kill()
            process.wait()
            startup_log.seek(0)
            raise GraderError(f"the process for students' code did not start:\n{startup_log.read().decode()[-3000:]}")
        startup_log.close()
        return cls(process, ours, isolated, scratch)

    def fork(self, limits):
        """A fresh child for one hand-in, with `limits` (``{name: value}``, see `grader.student_process`).

        Returns:
            The connected socket to talk to the child with.

        Raises `GraderError` when the process does not fork (it is then stopped: the next
        `grader.remote.warm_process` starts a fresh one).
        """
        ours, theirs = socket.socketpair()
        words = " ".join(f"{name} {int(value)}" for name, value in limits.items())
        with alarm_held():  # a reply left unread would answer the next command
            try:
                socket.send_fds(self.control, [f"fork {words}".encode()], [theirs.fileno()])
            except OSError as error:
                self._stop(f"did not take the command to fork ({type(error).__name__})")
            finally:
                theirs.close()
            if self._reply() != b"forked":
                self._stop("did not fork")
        return ours

    def reap(self):
        """End the child with everything it started: ``(wait status as from os.waitpid, CPU seconds)``.

        Raises `GraderError` when the process does not confirm it (it is then stopped).
        """
        with alarm_held():  # a reply left unread would answer the next command
            try:
                self.control.sendall(b"reap")
            except OSError as error:
                self._stop(f"did not take the command to end its child ({type(error).__name__})")
            reply = self._reply().decode().split()
        if len(reply) != 3 or reply[0] != "reaped":
            self._stop("did not end its child")
        return int(reply[1]), float(reply[2])

    def _stop(self, what):
        """Kill the process, out of step with the grader, and raise `GraderError` saying `what` it did."""
        self.process.kill()
        self.process.wait()
        raise GraderError(f"the process for students' code {what}")

    def _reply(self):
        """The process's answer to a command; empty if it sent none within `REPLY_SECONDS`."""
        self.control.settimeout(REPLY_SECONDS)
        try:
            return self.control.recv(64)
        except OSError:
            return b""
        finally:
            self.control.settimeout(None)

    def alive(self):
        return self.process.poll() is None

    def close(self):
        """Stop the process (and any child it has)."""
        self.control.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.scratch:
            empty_folder(self.scratch)
            os.rmdir(self.scratch)
