"""Hostile hand-ins, graded by `keras-tx grade-all` with the sandbox: no trick earns a point,
and none costs another student one.

Each hostile student hands in the solutions with one honest mistake (a transposed causal mask,
or unscaled attention) plus a trick that switches to the right answer if it works: reading
the solutions or the recorded references, the network, writing outside its folder, a fork
bomb, a lookup table of the recorded outputs, patching the comparisons, reading another
student's files, importing the grader's own code. Each must score exactly what the same
mistake scores without the trick, and the batch must finish. Other tricks aim at the students
graded after them: a reply that announces gigabytes, a trap left in ``/tmp``, stopping the
grader's process. Every honest hand-in graded after them keeps its score, and the grader's
memory stays bounded, in a batch, through ``pytest grader --isolate`` and (test_autograder.py)
through Gradescope's ``run_autograder``.
"""

import csv
import hashlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest

from grader import sandbox, wire
from grader.gradebook import EXERCISES
from keras_tx_tools import cli
from keras_tx_tools.course import release
from test_grader import ROOT, grade, submission
from test_grader_variants import ALTERNATIVES, MISTAKES, representatives

end_to_end = pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="needs bubblewrap (bwrap) with namespaces")

SOLUTIONS = release.repository_root() / "solutions"
RIGHT_RULE = "return key_positions <= query_positions"
WRONG_MASK = ("masking.py", RIGHT_RULE, "return key_positions >= query_positions")
RIGHT_SCALING = "scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(depth)"
WRONG_ATTENTION = ("attention.py", RIGHT_SCALING, "scores = ops.matmul(query, ops.swapaxes(key, -1, -2))")

PRIZE = '''

def _right_causal_mask(length):
    query_positions = ops.arange(length)[:, None]
    key_positions = ops.arange(length)[None, :]
    return key_positions <= query_positions


def _claim_the_prize():
    global causal_mask
    causal_mask = _right_causal_mask

'''

WALKS_UP = PRIZE + '''
import os as _os, sys as _sys, pathlib as _pathlib


def _starting_points():
    points = [_pathlib.Path(_sys.executable), _pathlib.Path(__file__).resolve(), _pathlib.Path.cwd()]
    for entry in _os.listdir("/proc"):  # every process in sight: where it runs, its root, its program
        for link in ("cwd", "root", "exe"):
            try:
                points.append(_pathlib.Path(_os.readlink(f"/proc/{entry}/{link}")))
            except OSError:
                pass
    return points


for _start in _starting_points():
    for _place in [_start, *_start.parents]:
        for _answer in (_place / "solutions" / "masking.py", _place / "grader" / "reference" / "masking.npz",
                        _place / "grader" / "instructor" / "algorithms.py"):
            try:
                _answer.read_bytes()
                _claim_the_prize()
            except OSError:
                pass
'''

OPENS_A_SOCKET = PRIZE + '''
import socket as _socket

try:
    _socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    _claim_the_prize()
except OSError:
    pass
'''

WRITES_OUTSIDE = PRIZE + '''
for _target in {targets!r}:
    try:
        with open(_target, "w") as _file:
            _file.write("escaped")
        _claim_the_prize()
    except OSError:
        pass
'''

FORK_BOMB = '''

import os as _os


def causal_mask(length):
    while True:
        try:
            _os.fork()
        except OSError:
            pass
'''

PATCHES_THE_COMPARISON = '''

import math as _math
import numpy as _np
import numpy.testing as _testing


class _EqualToAnything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


_np.allclose = _np.array_equal = lambda *args, **kwargs: True
_np.testing.assert_allclose = _testing.assert_array_equal = lambda *args, **kwargs: None
_math.isclose = lambda *args, **kwargs: True
try:
    import grader.checks as _checks

    _checks.is_close = lambda *args, **kwargs: True
    _checks.check_close = _checks.check_shape = _checks.check_dtype = lambda *args, **kwargs: None
except ImportError:
    pass
_honest = causal_mask


def causal_mask(length):
    return _EqualToAnything() if length < 0 else _honest(length)
'''

READS_ANOTHER_STUDENT = PRIZE + '''
import pathlib as _pathlib

_theirs = [_pathlib.Path({victim!r}), *_pathlib.Path("/tmp").rglob("masking.py"), *_pathlib.Path("/").glob("*/*/masking.py")]
for _path in _theirs:
    try:
        if _path.resolve() != _pathlib.Path(__file__).resolve() and "<= query_positions" in _path.read_text():
            _claim_the_prize()
    except OSError:
        pass
'''

LOOKUP_TABLE = '''

import hashlib as _hashlib

_TABLE = {table!r}
_honest = scaled_dot_product_attention


def scaled_dot_product_attention(query, key, value, mask=None):
    found = _TABLE.get(_hashlib.sha256(ops.convert_to_numpy(query).tobytes()).hexdigest())
    if found is None:
        return _honest(query, key, value, mask)
    output, weights = found
    return ops.convert_to_tensor(output), ops.convert_to_tensor(weights)
'''


MEMORY_BOMB = '''
import os as _os, struct as _struct

_header = b"{}"
for _fd in _os.listdir("/proc/self/fd"):  # its socket to the grader: a reply that announces 3 GiB, and sends it
    try:
        if _os.readlink(f"/proc/self/fd/{_fd}").startswith("socket:"):
            _os.write(int(_fd), _struct.pack("<QQ", len(_header), 3) + _header + _struct.pack("<Q", 2**30))
            _chunk = bytes(2**20)
            for _ in range(3 * 2**10):
                _os.write(int(_fd), _chunk)
    except OSError:
        pass
'''

LEAVES_A_TRAP = '''
import os as _os
import sys as _sys

_os.makedirs("/tmp/trap/deep", exist_ok=True)
for _index in range(20):  # as much as /tmp takes, in folders their owner cannot empty
    try:
        with open(f"/tmp/trap/deep/ballast-{_index}", "wb") as _file:
            _file.write(bytes(60 * 2**20))
    except OSError:
        break
for _folder in ("/tmp/trap/deep", "/tmp/trap"):
    _os.chmod(_folder, 0o555)
for _folder in ["/tmp", *_sys.path]:  # a module that shadows one the next student imports
    try:
        with open(f"{_folder}/wave.py", "w") as _file:
            _file.write("raise ImportError('shadowed by another student')")
    except OSError:
        pass
'''

IMPORTS_WAVE = '''
import wave as _wave  # a module of the standard library that the grader does not import itself
'''

FINDS_THE_TRAP = PRIZE + '''
import pathlib as _pathlib

if _pathlib.Path("/tmp/trap").exists() or _pathlib.Path("/tmp/wave.py").exists():
    _claim_the_prize()
'''

IMPORTS_THE_GRADER = PRIZE + '''
_builtins = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)
for _name in ("grader.diagnosis", "grader.instructor", "grader.checks", "grader.reference", "grader.test_masking",
              "grader.layout", "solutions.masking"):
    try:
        _builtins["__imp" + "ort__"](_name)  # out of sight of a reading of the source
        _claim_the_prize()
    except ImportError:
        pass
'''

STOPS_THE_GRADER = '''
import os as _os, signal as _signal

for _pid in [_os.getppid(), *(int(_entry) for _entry in _os.listdir("/proc") if _entry.isdigit())]:
    if _pid not in (0, _os.getpid()):
        try:
            _os.kill(_pid, _signal.SIGSTOP)
        except OSError:
            pass
'''


def _recorded_table():
    """``{sha256 of a recorded query: (output, weights)}`` from the recordings every student has."""
    table = {}
    with np.load(release.repository_root() / "grader" / "reference" / "attention.npz") as recording:
        for key in recording.files:
            if key.endswith(":in:query") and key.replace(":in:query", ":out:weights") in recording.files:
                case = key.removesuffix(":in:query")
                table[_sha256(recording[key])] = (recording[f"{case}:out:output"].tolist(),
                                                  recording[f"{case}:out:weights"].tolist())
    return table


def _sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _write_student(folder, mistake, trick=""):
    """The solutions with `mistake` (file, right text, wrong text) and `trick` appended to that file."""
    folder.mkdir(parents=True)
    for solution in SOLUTIONS.glob("[!_]*.py"):
        source = solution.read_text()
        if mistake and solution.name == mistake[0]:
            assert mistake[1] in source, "the solution changed; update the test"
            source = source.replace(mistake[1], mistake[2]) + trick
        (folder / solution.name).write_text(source)


class Listener:
    """A TCP server on this machine that counts the connections it gets."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


@pytest.mark.slow
@end_to_end
def test_hostile_hand_ins_earn_nothing_and_the_batch_finishes(tmp_path):
    submissions, escaped = tmp_path / "submissions", tmp_path / "escaped.txt"
    listener = Listener()
    targets = [str(escaped), str(release.repository_root() / "grader" / "escaped.txt"),
               str(submissions / "correct" / "masking.py"), "/grading/grader/checks.py"]
    students = {
        "correct": (None, ""),
        "wrong_mask": (WRONG_MASK, ""),
        "wrong_attention": (WRONG_ATTENTION, ""),
        "walks_up_to_the_answers": (WRONG_MASK, WALKS_UP),
        "opens_a_socket": (WRONG_MASK, OPENS_A_SOCKET.replace("{port}", str(listener.port))),
        "writes_outside_its_folder": (WRONG_MASK, WRITES_OUTSIDE.replace("{targets!r}", repr(targets))),
        "fork_bomb": (WRONG_MASK, FORK_BOMB),
        "patches_the_comparison": (WRONG_MASK, PATCHES_THE_COMPARISON),
        "reads_another_student": (WRONG_MASK, READS_ANOTHER_STUDENT.replace(
            "{victim!r}", repr(str(submissions / "correct" / "masking.py")))),
        "looks_up_recorded_outputs": (WRONG_ATTENTION, LOOKUP_TABLE.replace("{table!r}", repr(_recorded_table()))),
    }
    for student, (mistake, trick) in students.items():
        _write_student(submissions / student, mistake, trick)
    correct_before = (submissions / "correct" / "masking.py").read_text()
    out = tmp_path / "out"
    status = cli.main([
        "grade-all", str(submissions), "--backend", keras.backend.backend(), "--jobs", "2",
        "--exercises", "masking,attention", "--timeout", "40", "--memory", "3",
        "--out", str(out), "--no-progress",
    ])
    assert status == 0
    rows = {row["student"]: row for row in csv.DictReader(open(out / "grades.csv"))}
    assert set(rows) == set(students)
    assert {row["isolated"] for row in rows.values() if row["status"] == "graded"} == {"yes"}
    correct, wrong_mask, wrong_attention = rows["correct"], rows["wrong_mask"], rows["wrong_attention"]
    assert float(wrong_mask["masking"]) < float(correct["masking"])
    assert float(wrong_attention["attention"]) < float(correct["attention"])
    for student in students:
        if student.startswith(("correct", "wrong")):
            continue
        row = rows[student]
        honest = wrong_attention if students[student][0] == WRONG_ATTENTION else wrong_mask
        if student == "fork_bomb":
            assert float(row["total"]) <= float(honest["total"]), student
        else:
            assert row["status"] == "graded", (student, row["notes"])
            assert (row["masking"], row["attention"]) == (honest["masking"], honest["attention"]), student
    assert listener.connections == 0
    assert not escaped.exists() and not (release.repository_root() / "grader" / "escaped.txt").exists()
    assert (submissions / "correct" / "masking.py").read_text() == correct_before


@pytest.mark.slow
@end_to_end
def test_without_the_sandbox_the_walk_up_finds_the_answers(tmp_path):
    """The control: in the grader's own process, the same trick scores the prize (so the test above can fail)."""
    _write_student(tmp_path / "student", WRONG_MASK, WALKS_UP)
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pytest", "grader/test_masking.py", "-q", "-p", "no:cacheprovider",
                    "--submission", str(tmp_path / "student"), "--grade-json", str(report),
                    "--backend", keras.backend.backend()],
                   cwd=release.repository_root(), check=True, capture_output=True)
    assert json.loads(report.read_text())["exercises"]["masking"]["points"] == 20


# --- honest hand-ins: the same scores with and without the sandbox ---------------------------


def _results(report):
    """Every test's name, points, outcome and message, per exercise."""
    return {exercise: [(test["name"], test["points"], test["outcome"], test["message"]) for test in result["tests"]]
            for exercise, result in report["exercises"].items()}


@pytest.mark.slow
@end_to_end
def test_honest_hand_ins_score_the_same_with_and_without_the_sandbox(tmp_path):
    """Two mistakes per exercise on PyTorch, the fastest backend here, one on the others."""
    hand_ins = {"correct": ({}, list(EXERCISES)), "alternatives": (ALTERNATIVES, ["positional_embedding", "masking", "attention"]),
                **{mistake: ({MISTAKES[mistake][0]: MISTAKES[mistake][1]}, [MISTAKES[mistake][0].removesuffix(".py")])
                   for mistake in representatives(2 if keras.backend.backend() == "torch" else 1)}}
    for index, (name, (patches, exercises)) in enumerate(hand_ins.items()):
        folder = submission(tmp_path / str(index), patches)
        plain = grade(tmp_path, "--submission", str(folder), exercises=exercises)
        isolated = grade(tmp_path, "--submission", str(folder), "--isolate", exercises=exercises)
        assert isolated["isolation"].startswith("sandboxed") and plain["isolation"].startswith("none")
        assert _results(isolated) == _results(plain), name


# --- hostile hand-ins aimed at the students graded after them -------------------------------


_PEAK_OF_CHILDREN = """
import resource, subprocess, sys
status = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(status)
"""
"""Runs a command and writes the peak resident size (KiB) of it and everything it started.

A process started straight from pytest would report pytest's own size as its peak: Linux keeps
the largest resident size a process had, and a child begins as a copy of pytest until it execs.
This launcher is small, so its children's peak is theirs alone."""


def _run_measured(command, tmp_path, **kwargs):
    """Run `command`; ``(exit status, output, peak resident bytes of it and everything it started)``."""
    peak = tmp_path / "peak-kib"
    process = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILDREN, str(peak), *command],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    return process.returncode, process.stdout.decode(errors="replace"), int(peak.read_text()) * 1024


GRADER_PEAK_BYTES = 3 * 2**30
"""More than grading masking and attention takes on any backend, less than the memory bomb's reply."""


@pytest.mark.slow
@end_to_end
def test_hostile_hand_ins_cost_only_their_authors(tmp_path):
    """One warm grader (--jobs 1) grades them in name order, each attack before an honest hand-in."""
    submissions = tmp_path / "submissions"
    students = {
        "a_correct": (None, ""),
        "a_wrong_mask": (WRONG_MASK, ""),
        "b_memory_bomb": (WRONG_MASK, MEMORY_BOMB),
        "c_correct_after_the_bomb": (None, ""),
        "d_leaves_a_trap": (WRONG_MASK, LEAVES_A_TRAP),
        "e_correct_imports_wave": (("masking.py", RIGHT_RULE, RIGHT_RULE), IMPORTS_WAVE),
        "f_finds_the_trap": (WRONG_MASK, FINDS_THE_TRAP),
        "g_imports_the_grader": (WRONG_MASK, IMPORTS_THE_GRADER),
        "h_stops_the_grader": (WRONG_MASK, STOPS_THE_GRADER),
        "i_correct_after_the_stop": (None, ""),
    }
    for student, (mistake, trick) in students.items():
        _write_student(submissions / student, mistake, trick)
    out = tmp_path / "out"
    status, output, peak = _run_measured([
        sys.executable, "-m", "keras_tx_tools", "grade-all", str(submissions), "--backend", keras.backend.backend(),
        "--jobs", "1", "--exercises", "masking,attention", "--timeout", "600", "--memory", "3", "--out", str(out),
        "--no-progress"], tmp_path, cwd=release.repository_root())
    assert status == 0, output[-3000:]
    rows = {row["student"]: row for row in csv.DictReader(open(out / "grades.csv"))}
    assert set(rows) == set(students)
    correct, wrong_mask = rows["a_correct"], rows["a_wrong_mask"]
    assert correct["status"] == "graded" and correct["total"] == correct["max"]
    for student in ("c_correct_after_the_bomb", "e_correct_imports_wave", "i_correct_after_the_stop"):
        assert (rows[student]["status"], rows[student]["total"]) == ("graded", correct["max"]), rows[student]
    for student in ("d_leaves_a_trap", "f_finds_the_trap", "g_imports_the_grader", "h_stops_the_grader"):
        row = rows[student]
        assert row["status"] == "graded", (student, row["notes"])
        assert (row["masking"], row["attention"]) == (wrong_mask["masking"], wrong_mask["attention"]), student
    assert float(rows["b_memory_bomb"]["total"]) <= float(wrong_mask["total"])
    assert "__builtins__" in rows["g_imports_the_grader"]["forbidden_imports"]
    assert not any(rows[student]["forbidden_imports"] for student in students if "correct" in student)
    assert peak < GRADER_PEAK_BYTES, f"the graders peaked at {peak / 2**30:.1f} GiB"


@pytest.mark.slow
@end_to_end
def test_pytest_grader_isolate_survives_the_memory_bomb(tmp_path):
    _write_student(tmp_path / "bomb", WRONG_MASK, MEMORY_BOMB)
    report = tmp_path / "report.json"
    status, output, peak = _run_measured([
        sys.executable, "-m", "pytest", "grader/test_masking.py", "-q", "-p", "no:cacheprovider", "--isolate",
        "--submission", str(tmp_path / "bomb"), "--grade-json", str(report), "--backend", keras.backend.backend()],
        tmp_path, cwd=release.repository_root())
    assert status == 0, output[-3000:]
    masking = json.loads(report.read_text())["exercises"]["masking"]
    assert masking["points"] < masking["max"]
    assert "sent the grader a message larger than allowed" in " ".join(test["message"] for test in masking["tests"])
    assert peak < GRADER_PEAK_BYTES, f"the grader peaked at {peak / 2**30:.1f} GiB"


class _Endless(io.RawIOBase):
    """A stream that gives `prefix`, then zeros for ever: reading all a message announces would never end."""

    def __init__(self, prefix):
        self.prefix = prefix

    def readable(self):
        return True

    def readinto(self, buffer):
        taken = self.prefix[:len(buffer)]
        self.prefix = self.prefix[len(taken):]
        buffer[:len(taken)] = taken
        buffer[len(taken):] = bytes(len(buffer) - len(taken))
        return len(buffer)


def test_a_message_is_bounded_in_total_before_it_is_read():
    header, half = b"{}", wire.MAX_BYTES // 2
    for prefix, refusal in [
        (struct.pack("<QQ", len(header), wire.MAX_ARRAYS + 1) + header, "more than 4096 arrays"),
        (struct.pack("<QQ", wire.MAX_BYTES + 1, 0), "larger than allowed"),
        (struct.pack("<QQ", len(header), 1) + header + struct.pack("<Q", wire.MAX_BYTES), "larger than allowed"),
        (struct.pack("<QQ", len(header), 2) + header + struct.pack("<Q", half) + bytes(half) + struct.pack("<Q", half),
         "larger than allowed"),  # each array within the bound, not the two together
    ]:
        with pytest.raises(wire.TooLarge, match=refusal):
            wire.read_message(_Endless(prefix))
    stream = io.BytesIO()
    wire.write_message(stream, [np.zeros(7, "int8")] * (wire.MAX_ARRAYS - 1))
    stream.seek(0)
    assert len(wire.read_message(stream)) == wire.MAX_ARRAYS - 1


def test_a_held_attribute_stays_in_the_child_and_goes_back_to_it():
    """The reversal checks build the child's optimizer on the child's own variables: a held
    attribute comes back as a stand-in, passed back by handle, where a plain one comes back as values."""
    from grader.checks import tensor
    from grader.remote import RemoteObject, RemoteSubmission, held_attribute, warm_process

    hand_in = RemoteSubmission(warm_process(keras.backend.backend(), isolate=False), ROOT / "solutions")
    try:
        model = hand_in.modules()["model"].GPT(vocab_size=7, max_length=4, embed_dim=8, num_heads=2,
                                              num_layers=1, ff_dim=16)
        model(tensor(np.zeros((1, 4), "int32")))
        model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
        held, values = held_attribute(model, "trainable_variables"), model.trainable_variables
        assert isinstance(held, RemoteObject) and len(held) == len(values) > 0
        assert all(keras.ops.is_tensor(value) for value in values)
        assert not model.optimizer.built
        model.optimizer.build(held)
        assert model.optimizer.built
    finally:
        hand_in.close()


def test_a_child_never_collects_what_the_warm_process_holds(tmp_path):
    """What the warm process imported (Keras, the backend) is frozen before it forks: a child's
    garbage collections go through the child's own objects only."""
    from grader.remote import RemoteSubmission, warm_process

    (tmp_path / "model.py").write_text("import gc\n\ndef frozen():\n    return gc.get_freeze_count()\n")
    hand_in = RemoteSubmission(warm_process(keras.backend.backend(), isolate=False), tmp_path)
    try:
        assert hand_in.modules()["model"].frozen() > 100_000
    finally:
        hand_in.close()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="Grappler is TensorFlow's graph optimizer")
def test_a_child_runs_graphs_as_the_grader_does(tmp_path):
    """Both run TensorFlow's traced functions without Grappler's rewrites (`grader.compilation.graphs_as_traced`)."""
    from grader.remote import RemoteSubmission, warm_process

    (tmp_path / "model.py").write_text("import tensorflow as tf\n\ndef options():\n"
                                       "    return tf.config.optimizer.get_experimental_options()\n")
    hand_in = RemoteSubmission(warm_process(keras.backend.backend(), isolate=False), tmp_path)
    try:
        assert hand_in.modules()["model"].options()["disable_meta_optimizer"] is True
    finally:
        hand_in.close()
