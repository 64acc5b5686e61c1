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
  process but this one), and report how the child ended and the CPU time it used.

Started as root (as in ``keras-tx grade-all`` and the Gradescope autograder), this process
stays root and each child becomes a user of its own (`UNUSED_IDS`), so it cannot signal this
process; where root may mount, it also gets a mount namespace of its own with a fresh ``/tmp``
of at most ``tmp_bytes`` (a tmpfs that vanishes with the child, whatever modes its files
have). Otherwise children share a scratch folder, which `empty_folder` empties after each
(and, not started as root, this process's user).

The expected answers never come here: the grader compares what the child returns.
"""

import gc
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
"""The limits a child takes, by the name the grader gives them (and ``tmp_bytes``, the size of its ``/tmp``)."""


UNUSED_IDS = range(2**20, 2**30)
"""User and group ids no account has: each child of a process started as root takes one."""

CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x20000, 0x2, 0x4, 0x4000, 0x40000
"""Linux's flags for a mount namespace of one's own (``unshare(2)``, ``mount(2)``)."""


def main(argv):
    control = socket.socket(fileno=int(argv[0]))
    own_namespace = "--own-pid-namespace" in argv
    tempfile.tempdir = argv[argv.index("--scratch") + 1]
    # As root, each child becomes a user no account has (`_become_nobody`): root-only files are
    # out of reach, it cannot signal this process, and the process limit counts its own processes
    # only. That needs the Python environment and the grader readable by any user. Where root may
    # also mount (not in every container), each child gets a fresh /tmp of its own (`_fresh_tmp`),
    # unless the Python environment or the grader lies under /tmp: a fresh /tmp would hide the
    # modules a child imports only when it first needs them.
    needed = (sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    own_user = os.getuid() == 0 and _readable_by_others(*needed)
    own_tmp = own_user and not any(_inside("/tmp", path) for path in needed) and _works(_fresh_tmp, 2**20)
    if not own_tmp:  # a folder of its own in the scratch for the children to share, emptied after each;
        # never the scratch itself, which may hold the Python environment when it is /tmp
        tempfile.tempdir = tempfile.mkdtemp(prefix="hand-ins-", dir=tempfile.tempdir)
        if own_user:
            os.chmod(tempfile.tempdir, 0o1777)  # each child writes there as its own user
    os.chdir("/")
    if os.environ.get("KERAS_BACKEND") == "jax":
        from grader.compilation import prefer_fast_compilation, read_compilation_cache

        prefer_fast_compilation()  # as the grader compiles: the same programs, the same cache keys
    import keras  # noqa: F401 -- imported once, here, so that no child pays for it

    if keras.backend.backend() == "jax":  # whatever chose it: KERAS_BACKEND or Keras' own configuration
        from grader.compilation import (compiled_keras_functions, initializers_in_numpy, lean_locations,
                                        reuse_ir_context, shared_random_programs)

        lean_locations()
        reuse_ir_context()  # each child lowers every program of its hand-in in one context
        shared_random_programs()  # and draws weights of every shape from one or two programs
        compiled_keras_functions()  # and runs softmax, GELU and layer normalisation as one program each
        initializers_in_numpy()  # and fills zeros and ones with no program
    from grader.compilation import graphs_as_traced

    graphs_as_traced()  # TensorFlow runs traced functions as the grader does; a no-op elsewhere
    if "--jax-cache" in argv:
        read_compilation_cache(argv[argv.index("--jax-cache") + 1])

    from grader import eager_build, submission  # noqa: F401 -- imported once, here, for every child
    from grader.precision import FULL, set_float32_precision

    set_float32_precision(FULL[keras.backend.backend()])  # as the grader computes the reference

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)  # the models are tiny: threads only stall when graders share a CPU
        _warm_up(keras)
    gc.freeze()  # all this process holds lives as long as it: no child's collections go through it again
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
            child = _fork(control, fds[0], dict(zip(command[1::2], map(int, command[2::2]))), own_user, own_tmp)
        elif command[0] == "reap":
            status, cpu_seconds = _reap(child, own_namespace, own_tmp)
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
    scores = keras.ops.transpose(model(tokens), (0, 2, 1))
    keras.ops.convert_to_numpy(keras.ops.softmax(keras.ops.where(scores > 0, scores, -1e9), axis=-1))


def _fork(control, connection_fd, limits, own_user, own_tmp):
    pid = os.fork()
    if pid:
        os.close(connection_fd)
        control.sendall(b"forked")
        return pid
    code = 1
    try:
        control.close()
        os.setsid()
        tmp_bytes = limits.pop("tmp_bytes")
        for name, value in limits.items():
            resource.setrlimit(LIMITS[name], (value, value))
        if own_tmp:
            _fresh_tmp(tmp_bytes)
        if own_user:
            _become_nobody()
        from grader.eager_build import first_call_builds

        with first_call_builds():  # as the grader builds: no symbolic run before a fresh model's first call
            Child(socket.socket(fileno=connection_fd)).serve()
        code = 0
    finally:
        os._exit(code)


def _inside(folder, path):
    """Whether `path` is `folder` or lies under it, symbolic links resolved.

    >>> _inside("/tmp", "/tmp/course/.venv"), _inside("/tmp", "/tmpfiles"), _inside("/tmp", "/usr")
    (True, False, False)
    """
    folder, path = os.path.realpath(folder), os.path.realpath(path)
    return os.path.commonpath([folder, path]) == folder


def _works(function, *args):
    """Whether ``function(*args)`` succeeds, tried in a child process that ends right after."""
    pid = os.fork()
    if not pid:
        code = 1
        try:
            function(*args)
            code = 0
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1] == 0


def _fresh_tmp(tmp_bytes):
    """Give this (root) process a fresh ``/tmp`` of `tmp_bytes` in a mount namespace of its own."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    steps = (lambda: libc.unshare(CLONE_NEWNS),  # one after the other: never a mount outside the new namespace
             lambda: libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None),
             lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777".encode()))
    for step in steps:
        if step():
            raise OSError(ctypes.get_errno(), "a private /tmp for the child")
    tempfile.tempdir = "/tmp"
    os.environ.update(HOME="/tmp", TMPDIR="/tmp")


def _become_nobody():
    """Make this (root) process a user no account has, without any of root's capabilities."""
    identity = UNUSED_IDS[secrets.randbelow(len(UNUSED_IDS))]
    os.setgroups([])
    os.setgid(identity)
    os.setuid(identity)


def _reap(pid, own_namespace, own_tmp):
    """Kill the child with all it started, and leave nothing of it behind; its wait status and CPU seconds."""
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
    if not own_tmp:  # a /tmp of its own went with it
        empty_folder(tempfile.tempdir)
    return status, usage.ru_utime + usage.ru_stime


def empty_folder(folder):
    """Remove everything inside `folder`, whatever the modes of its files and folders.

    >>> import pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "locked").mkdir()
    >>> (folder / "locked" / "file").write_text("left behind")
    11
    >>> (folder / "locked").chmod(0o555)
    >>> empty_folder(folder)
    >>> list(folder.iterdir())
    []
    >>> folder.rmdir()
    """
    for parent, folders, _ in os.walk(folder):
        for name in folders:  # before os.walk lists them: a folder of mode 0 cannot be read
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


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
        self.handles = {}  # id(object) -> its handle; `objects` keeps them alive, so no id is reused

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
            from grader.seeding import seed_keras

            seed_keras(request["seed"], request["check"])
            return None
        target = self.objects[request["id"]]
        if op == "getattr":
            value = getattr(target, request["name"])
            return self.hold(value) if request.get("hold") else self.export(value)
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

        if type(value) in wire.PLAIN_TYPES:
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
        return self.hold(value)

    def hold(self, value):
        """A handle to `value`, which stays here: the grader gets a stand-in it can pass back."""
        handle = self.handles.setdefault(id(value), len(self.objects))  # one object, one handle
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
            return wire.as_tensor(value.payload)
        if value.kind == "object":
            return self.objects[value.payload]
        return keras.saving.deserialize_keras_object(value.payload)

    def describe(self, error):
        """What the grader needs to re-raise `error`: its type, message and place in the student's code."""
        from grader.failures import describe_exception, raising_stub

        return {
            "type": type(error).__name__,
            "message": str(error)[:2000],
            "description": describe_exception(error, self.folder)[:2000],
            "stub": raising_stub(error) if isinstance(error, NotImplementedError) else None,
        }


def _keras_classes(value):
    """The names of the public Keras classes (`wire.public_keras_class`) `value` is an instance of, most derived first."""
    return [cls.__name__ for cls in type(value).__mro__ if wire.public_keras_class(cls.__name__) is cls]


if __name__ == "__main__":
    main(sys.argv[1:])
