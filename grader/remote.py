"""A hand-in loaded in a sandboxed child process, reached from the grader through stand-ins.

``pytest grader --isolate`` grades with `RemoteModule` stand-ins instead of the loaded files:
``student.causal_mask(3)`` sends the call to the child that runs the hand-in
(`grader.student_process`), and what comes back is plain data: numbers, strings, arrays,
tensors rebuilt here from their values, or a `RemoteObject` stand-in for anything else (a
layer the student's class built, say). The checks, the reference and the comparison all run
here, in the grader; the child sees only the inputs it is given.

A `RemoteObject` passes ``isinstance`` checks for the public Keras layer or learning-rate schedule
class its object is an instance of, so a student's ``Dense`` sublayer is seen as a
``keras.layers.Dense``, and its ``type(...).__name__`` is the student's class name.

When the child runs out of time in a check, crashes, is killed by a limit or sends more than
a message may hold (`grader.wire.MAX_BYTES`), the check fails, the child is ended, and the next
check gets a fresh child that loads the same files again. When the warm process itself fails,
the check raises `grader.failures.GraderError` instead: the grader's failure, not the student's.

Example::

    submission = RemoteSubmission(warm_process("torch"), pathlib.Path("exercises"))
    masking = submission.modules()["masking"]
    masking.causal_mask(3)          # a tensor, computed in the child
    submission.close()
"""

import atexit
import builtins
import functools
import os
import pathlib
import signal
import socket
import time

import keras
import numpy as np

from grader import seeding, wire
from grader.failures import GradingFailure, HandInProblem
from grader.gradebook import EXERCISES
from grader import sandbox
from grader.sandbox import StudentProcess

LIMITS = {"cpu_seconds": 600, "memory_bytes": 4 * 2**30, "processes": 256, "file_bytes": 64 * 2**20,
          "tmp_bytes": 256 * 2**20}
"""What a hand-in's child may use: CPU seconds, bytes of data, processes and threads, bytes per file,
bytes in its own ``/tmp`` (where the grader runs as root)."""

CALL_SECONDS = 600
"""The longest one request may take when no per-check time limit interrupts it first."""

_WARM = {}


def warm_process(backend, isolate=True):
    """The process for students' code on `backend`, started once per grader process and kept warm."""
    key = (backend, isolate)
    process = _WARM.get(key)
    if process is None or not process.alive():
        process = _WARM[key] = StudentProcess.start(backend, isolate)
        atexit.register(process.close)
    return process


class RemoteSubmission:
    """One hand-in's exercise files, loaded in a child of `process`."""

    def __init__(self, process, folder, limits=None, time_budget=None):
        self.process = process
        self.limits = {**LIMITS, **(limits or {})}
        self.deadline = None if time_budget is None else time.monotonic() + time_budget
        self.time_budget = time_budget
        self.out_of_time = False
        self.files = {
            f"{exercise}.py": (folder / f"{exercise}.py").read_text(encoding="utf-8", errors="replace")
            for exercise in EXERCISES
            if (folder / f"{exercise}.py").is_file()
        }
        self.connection = None
        self.generation = 0
        self.problems = {}
        self.seeding = None
        self.seconds = 0.0
        """Wall-clock seconds spent waiting for the child: loading the files, then running the student's code."""
        self.cpu_seconds = 0.0
        """CPU seconds the children used (counted when each ends)."""

    def modules(self):
        """``{exercise: RemoteModule}`` in course order."""
        self._ensure_child()
        return {exercise: RemoteModule(self, exercise) for exercise in EXERCISES}

    def seed(self, seed, check):
        """Seed Keras in the child as `grader.seeding.seed_keras` seeds the grader."""
        self.seeding = (seed, check)
        self.request({"op": "seed", "seed": seed, "check": check})

    def follow_seeding(self):
        """Until `close`, every `grader.seeding.seed_keras` of the grader also seeds the child,
        so that the child's layers start from the weights they would have in the grader's process."""
        seeding.SEEDING_HOOKS.append(self.seed)

    def request(self, message):
        """Send `message` to the child and return its value; re-raise what the student's code raised."""
        self._ensure_child()
        self.connection.settimeout(self._seconds_left())
        start = time.monotonic()
        try:
            wire.write_message(self.writer, message)
            reply = wire.read_message(self.reader)
            self.seconds += time.monotonic() - start
        except (wire.WireError, OSError) as error:
            status = self.end_child()
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.out_of_time = True
                raise HandInProblem(f"grading was stopped after the time limit of {self.time_budget:g} s") from None
            raise HandInProblem(_ending(status, error)) from None
        except BaseException:  # a time limit of the check: the child is mid-call, so it cannot go on
            self.end_child()
            raise
        if "error" in reply:
            raise _rebuilt_exception(reply["error"])
        return self.bring_out(reply["value"])

    def end_child(self):
        """End the current child (if any) with all it started; its wait status."""
        if self.connection is None:
            return 0
        self.connection.close()
        self.connection = None
        self.generation += 1
        status, cpu_seconds = self.process.reap()
        self.cpu_seconds += cpu_seconds
        return status

    def close(self):
        if self.seed in seeding.SEEDING_HOOKS:
            seeding.SEEDING_HOOKS.remove(self.seed)
        self.end_child()

    def _seconds_left(self):
        """Seconds the next request may take; fails the check once the hand-in's time is up."""
        if self.deadline is None:
            return CALL_SECONDS
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.out_of_time = True
            raise HandInProblem(f"grading was stopped after the time limit of {self.time_budget:g} s")
        return min(left, CALL_SECONDS)

    def _ensure_child(self):
        if self.connection is not None:
            return
        self._seconds_left()
        self.connection = self.process.fork(self.limits)
        self.connection.settimeout(CALL_SECONDS)
        self.reader, self.writer = self.connection.makefile("rb"), self.connection.makefile("wb")
        self.problems = self.request({"op": "load", "files": self.files})
        if self.seeding is not None:
            self.request({"op": "seed", "seed": self.seeding[0], "check": self.seeding[1]})

    def path_for_student(self, path):
        """`path`, a file or folder under the grader's folder, as the child sees it."""
        if not self.process.isolated:
            return path
        return str(sandbox.GRADER_IN_SANDBOX / pathlib.Path(path).resolve().relative_to(sandbox.GRADER))

    def send_in(self, value):
        """An argument for the child: tensors and arrays by value, stand-ins by handle, Keras objects by config."""
        if type(value) in wire.PLAIN_TYPES:  # first: GPT-2's merges are 100,000 strings,
            return value  # and asking TensorFlow whether each is a tensor took 0.6 s
        if issubclass(type(value), RemoteObject):
            if value._generation != self.generation:
                raise HandInProblem("an object your code made was lost when its process was restarted")
            return wire.Tag("object", value._id)
        if isinstance(value, (list, tuple)):
            items = [self.send_in(item) for item in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, dict):
            return {key: self.send_in(item) for key, item in value.items()}
        if isinstance(value, keras.Variable) or keras.ops.is_tensor(value):
            return wire.Tag("tensor", np.asarray(keras.ops.convert_to_numpy(value)))
        if hasattr(value, "get_config") and type(value).__module__.startswith("keras"):
            return wire.Tag("keras", keras.saving.serialize_keras_object(value))
        return value

    def bring_out(self, value):
        """A value from the child, with tensors rebuilt and other objects as `RemoteObject` stand-ins."""
        if isinstance(value, list):
            return [self.bring_out(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.bring_out(item) for item in value)
        if isinstance(value, dict):
            return {key: self.bring_out(item) for key, item in value.items()}
        if not isinstance(value, wire.Tag):
            return value
        if value.kind == "tensor":
            return wire.as_tensor(value.payload)
        if value.kind == "object":
            info = value.payload
            keras_classes = [str(name) for name in info.get("keras", [])]
            cls = _remote_class(str(info.get("type", "object"))[:100], keras_classes[0] if keras_classes else "")
            return cls(self, info["id"])
        raise HandInProblem(f"the grading process sent an unknown value ({value.kind})")


class RemoteModule:
    """Stand-in for one exercise file loaded in the child (see `grader.submission.StudentModule`)."""

    def __init__(self, submission, exercise):
        self._submission = submission
        self._exercise = exercise

    @property
    def _problem(self):
        return self._submission.problems.get(self._exercise)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._problem:
            raise HandInProblem(self._problem)
        return self._submission.request({"op": "getattr", "id": self._exercise, "name": name})


class RemoteObject:
    """Stand-in for an object that lives in the child: attributes and calls are sent there."""

    def __init__(self, submission, handle):
        object.__setattr__(self, "_submission", submission)
        object.__setattr__(self, "_id", handle)
        object.__setattr__(self, "_generation", submission.generation)

    def _request(self, op, name=None, args=(), kwargs=None, **options):
        submission = self._submission
        if self._generation != submission.generation:
            raise HandInProblem("an object your code made was lost when its process was restarted")
        message = {"op": op, "id": self._id, "name": name, **options}
        if op == "call":
            message.update(args=submission.send_in(list(args)), kwargs=submission.send_in(dict(kwargs or {})))
        return submission.request(message)

    def __getattr__(self, name):
        if name.startswith("__") and name not in ("__name__", "__qualname__"):
            raise AttributeError(name)  # NumPy, pytest and copy probe for these: they stay here
        return self._request("getattr", name)

    def __call__(self, *args, **kwargs):
        return self._request("call", None, args, kwargs)

    def __len__(self):
        return self._request("call", "__len__")

    def __getitem__(self, key):
        return self._request("call", "__getitem__", (key,))

    def __repr__(self):
        return f"<{type(self).__name__} in the student's process>"

    def __eq__(self, other):  # two stand-ins of one object (its handle) are equal, as that object is to itself
        return isinstance(other, RemoteObject) and (self._submission, self._id) == (other._submission, other._id)

    def __hash__(self):
        return hash((id(self._submission), self._id))


def held_attribute(target, name):
    """``getattr(target, name)``; for a stand-in, a stand-in of the attribute, which stays in the child
    (its variables, say, to pass back to a call there) instead of coming back as values.

    >>> held_attribute(3 + 4j, "imag")  # an object here: its own attribute
    4.0
    """
    if isinstance(target, RemoteObject):
        return target._request("getattr", name, hold=True)
    return getattr(target, name)


def path_seen_by(module, path):
    """`path` (under the grader's folder) as the code of `module` sees it: moved for a sandboxed hand-in."""
    return module._submission.path_for_student(path) if isinstance(module, RemoteModule) else str(path)


@functools.cache
def _remote_class(type_name, keras_name):
    """A `RemoteObject` class named like the student's; ``isinstance`` sees it as `keras_name`'s class."""
    keras_class = wire.public_keras_class(keras_name) if keras_name else None
    namespace = {"__class__": property(lambda self: keras_class)} if keras_class else {}
    return type(type_name, (RemoteObject,), namespace)


@functools.cache
def _student_exception_class(name):
    return type(name, (Exception,), {})


def _rebuilt_exception(error):
    """The exception the student's code raised in the child, as an exception of the same name here."""
    name, message = str(error.get("type")), str(error.get("message"))
    failure = {cls.__name__: cls for cls in (GradingFailure, HandInProblem)}.get(name)
    if failure:
        return failure(message)
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = _student_exception_class(name[:100])
    try:
        rebuilt = cls(message)
    except Exception:  # an exception type that needs other arguments
        rebuilt = _student_exception_class(name[:100])(message)
    rebuilt.student_description = str(error.get("description"))
    rebuilt.raising_stub = str(error["stub"])[:200] if error.get("stub") else None
    return rebuilt


def _ending(status, error):
    """The student's message when the child died mid-request."""
    if isinstance(error, wire.TooLarge):
        return f"your code's process sent the grader {error}"
    if isinstance(error, socket.timeout):
        return f"your code took longer than {CALL_SECONDS} s"
    if os.WIFSIGNALED(status):
        signal_number = os.WTERMSIG(status)
        if signal_number == signal.SIGXCPU:
            return "your code used up its CPU time, so the grader stopped it"
        return f"your code's process was killed by {signal.Signals(signal_number).name}: out of memory or a limit?"
    if os.WIFEXITED(status):
        return f"your code ended the grading process (exit status {os.WEXITSTATUS(status)})"
    return f"the grading process stopped answering ({error})"
