"""The process that runs students' code: warm once, then one fresh forked child per hand-in.

``python -m grader.student_process CONTROL_FD [--own-pid-namespace]`` is started by
`grader.sandbox`, normally inside a bubblewrap sandbox. It imports Keras and the backend once,
then waits for commands on the control socket:

* ``fork`` (with a new socket): fork a child for one hand-in. The child drops the control
  socket, takes its limits (CPU time, memory, processes, file size), writes the hand-in's
  files into a private folder and serves the grader's requests on the new socket: load the
  files, read an attribute, call a function, seed Keras. Values go back as plain data
  (`grader.wire`); any other object stays here and the grader gets a numbered handle to it.
* ``reap``: end the child and everything it started (in its own process namespace: every
  process but this one), empty the shared scratch folder, and report how the child ended and
  the CPU time it used.

The expected answers never come here: the grader compares what the child returns.
"""

import os
import resource
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time

from grader import wire

LIMITS = {
    "cpu_seconds": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_DATA,
    "processes": resource.RLIMIT_NPROC,
    "file_bytes": resource.RLIMIT_FSIZE,
}
"""The limits a child takes, by the name the grader gives them."""


UNUSED_IDS = range(2**20, 2**30)
"""User and group ids no account has: the process for students' code, started as root, takes one."""


def main(argv):
    control = socket.socket(fileno=int(argv[0]))
    own_namespace = "--own-pid-namespace" in argv
    tempfile.tempdir = argv[argv.index("--scratch") + 1]
    if os.getuid() == 0 and _readable_by_others(sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
        # Become a user of its own: root-only files are out of reach, and the process limit counts
        # this process and its children only (a shared user such as nobody would let a fork bomb
        # in another grader's sandbox leave a child here unable to start a thread).
        os.chmod(tempfile.tempdir, 0o1777)
        os.setgroups([])
        identity = UNUSED_IDS[secrets.randbelow(len(UNUSED_IDS))]
        os.setgid(identity)
        os.setuid(identity)
    import keras  # noqa: F401 -- imported once, here, so that no child pays for it

    from grader import submission  # noqa: F401
    from grader.precision import FULL, set_float32_precision

    set_float32_precision(FULL[keras.backend.backend()])  # as the grader computes the reference

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)  # the models are tiny: threads only stall when graders share a CPU
        _warm_up(keras)
    control.sendall(b"ready")
    silence = os.open(os.devnull, os.O_WRONLY)  # what students print goes nowhere
    os.dup2(silence, 1)
    os.dup2(silence, 2)
    child = None
    while True:
        data, fds, _, _ = socket.recv_fds(control, 4096, 1)
        if not data:
            return
        command = data.decode().split()
        if command[0] == "fork":
            child = _fork(control, fds[0], dict(zip(command[1::2], map(int, command[2::2]))))
        elif command[0] == "reap":
            status, cpu_seconds = _reap(child, own_namespace)
            child = None
            control.sendall(f"reaped {status} {cpu_seconds}".encode())


def _readable_by_others(*paths):
    """Whether a user with no rights of its own can read `paths` (every folder above them open to all)."""
    import pathlib
    import stat

    for path in map(pathlib.Path, paths):
        for folder in [path, *path.parents]:
            if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
                return False
    return True


def _warm_up(keras):
    """Train a tiny model once, so that every child starts with what Keras imports and PyTorch
    loads on first use. (Only on PyTorch: JAX and TensorFlow start threads when they first
    compute, and a process with threads must not fork; for them the import is the warm-up.)"""
    import numpy as np

    tokens = np.zeros((2, 3), "int32")
    model = keras.Sequential([keras.layers.Embedding(5, 4), keras.layers.LayerNormalization(epsilon=1e-5),
                              keras.layers.Dense(4, activation="gelu"), keras.layers.Dense(5, use_bias=False)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(tokens, tokens, batch_size=2, epochs=1, verbose=0, shuffle=False)
    scores = keras.ops.matmul(model(tokens), keras.ops.swapaxes(model(tokens), -1, -2))
    keras.ops.convert_to_numpy(keras.ops.softmax(keras.ops.where(scores > 0, scores, -1e9), axis=-1))


def _fork(control, connection_fd, limits):
    pid = os.fork()
    if pid:
        os.close(connection_fd)
        control.sendall(b"forked")
        return pid
    code = 1
    try:
        control.close()
        os.setsid()
        for name, value in limits.items():
            resource.setrlimit(LIMITS[name], (value, value))
        Child(socket.socket(fileno=connection_fd)).serve()
        code = 0
    finally:
        os._exit(code)


def _reap(pid, own_namespace):
    """Kill the child with all it started; empty the scratch folder; the child's wait status and CPU seconds."""
    if pid is None:
        return 0, 0.0
    if own_namespace:
        _kill(-1)  # everything in this process namespace but this process and bubblewrap
    else:
        _kill(-pid)  # its process group (a process that left it is out of reach)
    _, status, usage = os.wait4(pid, 0)
    while own_namespace:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    if own_namespace:
        _wait_until_alone()
    for entry in os.scandir(tempfile.tempdir):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
    return status, usage.ru_utime + usage.ru_stime


def _wait_until_alone(seconds=10):
    """Wait until the namespace's init has reaped every orphan the child left: until then they
    count against the process limit of the next child."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not [entry for entry in os.listdir("/proc") if entry.isdigit() and int(entry) not in (1, os.getpid())]:
            return
        time.sleep(0.01)


def _kill(target):
    try:
        os.kill(target, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Child:
    """Serves one hand-in: its files, its loaded modules and the objects they made."""

    def __init__(self, connection):
        self.reader = connection.makefile("rb")
        self.writer = connection.makefile("wb")
        self.folder = None
        self.objects = {}

    def serve(self):
        while True:
            try:
                request = wire.read_message(self.reader)
            except wire.WireError:
                return
            try:
                reply = {"value": self.handle(request)}
            except BaseException as error:  # noqa: B036 -- whatever the student's code raised goes back
                reply = {"error": self.describe(error)}
            wire.write_message(self.writer, reply)

    def handle(self, request):
        op = request["op"]
        if op == "load":
            return self.load(request["files"])
        if op == "seed":
            from grader.reference import seed_keras

            seed_keras(request["seed"], request["check"])
            return None
        target = self.objects[request["id"]]
        if op == "getattr":
            return self.export(getattr(target, request["name"]))
        if op == "call":
            if request.get("name"):
                target = getattr(target, request["name"])
            args = [self.bring_in(arg) for arg in request["args"]]
            kwargs = {key: self.bring_in(value) for key, value in request["kwargs"].items()}
            return self.export(target(*args, **kwargs))
        raise ValueError(f"unknown request {op!r}")

    def load(self, files):
        """Write the hand-in's files into a fresh private folder and load them."""
        import pathlib

        from grader.submission import load_submission

        self.folder = pathlib.Path(tempfile.mkdtemp(prefix=f"hand-in-{secrets.token_hex(4)}-"))
        for name, text in files.items():
            (self.folder / pathlib.Path(name).name).write_text(text, encoding="utf-8")
        os.chdir(self.folder)
        modules = load_submission(self.folder)
        problems = {}
        for exercise, module in modules.items():
            self.objects[exercise] = module
            problems[exercise] = module._problem
        return problems

    def export(self, value):
        """`value` as plain data for the grader: numbers, strings, arrays, tensors, or a handle."""
        import keras
        import numpy as np

        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in wire.ARRAY_KINDS:
            return value
        if isinstance(value, keras.Variable) or keras.ops.is_tensor(value):
            array = np.asarray(keras.ops.convert_to_numpy(value))
            if array.dtype.kind in wire.ARRAY_KINDS:
                return wire.Tag("tensor", array)
        if isinstance(value, (list, tuple)):  # Keras keeps sublayer lists in a list subclass
            items = [self.export(item) for item in value]
            return items if isinstance(value, list) else tuple(items)
        if type(value) is dict and all(type(key) is str for key in value):  # a checkpoint's config and arrays
            return {key: self.export(item) for key, item in value.items()}
        handle = len(self.objects)
        self.objects[handle] = value
        return wire.Tag("object", {"id": handle, "type": type(value).__name__, "keras": _keras_classes(value)})

    def bring_in(self, value):
        """An argument from the grader, with its tags turned back into tensors, objects and Keras objects."""
        if isinstance(value, list):
            return [self.bring_in(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.bring_in(item) for item in value)
        if isinstance(value, dict):
            return {key: self.bring_in(item) for key, item in value.items()}
        if not isinstance(value, wire.Tag):
            return value
        import keras

        if value.kind == "tensor":
            return keras.ops.convert_to_tensor(value.payload)
        if value.kind == "object":
            return self.objects[value.payload]
        return keras.saving.deserialize_keras_object(value.payload)

    def describe(self, error):
        """What the grader needs to re-raise `error`: its type, message and place in the student's code."""
        from grader.checks import describe_exception

        return {
            "type": type(error).__name__,
            "message": str(error)[:2000],
            "description": describe_exception(error, self.folder)[:2000],
        }


def _keras_classes(value):
    """The names of the public Keras classes (`wire.public_keras_class`) `value` is an instance of, most derived first."""
    return [cls.__name__ for cls in type(value).__mro__ if wire.public_keras_class(cls.__name__) is cls]


if __name__ == "__main__":
    main(sys.argv[1:])
