"""Start the process that runs students' code, inside a bubblewrap sandbox when there is one.

The sandbox (`bwrap`, the Debian package ``bubblewrap``) gives that process a root of its own:
the Python environment read-only, the grader's code without its recorded references, an empty
private ``/tmp``, no network, its own process namespace. No course repository, no solutions,
no gradebook, no other student's files: they are simply not there. When run as root it drops
to a user id of its own before any student code runs, so that process limits hold.

Where bubblewrap is missing or cannot create namespaces, `start` runs the same process without
it (`isolated` is then ``False``) and warns loudly: the student's code then still runs in a
separate, limited process, but can read whatever the grader's user can.

Example::

    sandbox = StudentProcess.start(backend="torch")
    connection = sandbox.fork(limits)      # a fresh child for one hand-in
    ...
    status, cpu_seconds = sandbox.reap()    # the child and all it started are gone
"""

import functools
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings

from grader.limits import alarm_held

GRADER = pathlib.Path(__file__).resolve().parent
STARTUP_SECONDS = 300
"""How long the process may take to import Keras before the grader gives up."""
REPLY_SECONDS = 120
"""How long the process may take to fork a child, or to end one with everything it started."""

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


GRADER_IN_SANDBOX = pathlib.PurePosixPath("/grading/grader")
"""Where the sandboxed process sees the grader's folder (read-only; its ``reference/`` hidden)."""


def _sandboxed(command):
    """`command` inside bubblewrap, seeing the grader's code at `GRADER_IN_SANDBOX` minus its references."""
    mounts = _mounts() + ["--perms", "0755", "--dir", str(GRADER_IN_SANDBOX.parent),
                          "--ro-bind", str(GRADER), str(GRADER_IN_SANDBOX)]
    if (GRADER / "reference").is_dir():
        mounts += ["--tmpfs", str(GRADER_IN_SANDBOX / "reference")]
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
        command = [sys.executable, "-s", "-m", "grader.student_process", str(theirs.fileno())]
        env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
        env.update(KERAS_BACKEND=backend, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3",
                   XLA_PYTHON_CLIENT_PREALLOCATE="false", TF_FORCE_GPU_ALLOW_GROWTH="true")
        if isolated:
            command = _sandboxed(command)
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
            raise RuntimeError(f"the process for students' code did not start:\n{startup_log.read().decode()[-3000:]}")
        startup_log.close()
        return cls(process, ours, isolated, scratch)

    def fork(self, limits):
        """A fresh child for one hand-in, with `limits` (``{name: value}``, see `grader.student_process`).

        Returns:
            The connected socket to talk to the child with.
        """
        ours, theirs = socket.socketpair()
        words = " ".join(f"{name} {int(value)}" for name, value in limits.items())
        with alarm_held():  # a reply left unread would answer the next command
            socket.send_fds(self.control, [f"fork {words}".encode()], [theirs.fileno()])
            theirs.close()
            if self._reply() != b"forked":
                self.process.kill()  # out of step: the next grading starts a fresh process
                raise RuntimeError("the process for students' code did not fork")
        return ours

    def reap(self):
        """End the child with everything it started: ``(wait status as from os.waitpid, CPU seconds)``."""
        with alarm_held():  # a reply left unread would answer the next command
            self.control.sendall(b"reap")
            reply = self._reply().decode().split()
        if len(reply) != 3 or reply[0] != "reaped":
            self.process.kill()  # out of step: the next grading starts a fresh process
            raise RuntimeError("the process for students' code did not end its child")
        return int(reply[1]), float(reply[2])

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
            shutil.rmtree(self.scratch, ignore_errors=True)
