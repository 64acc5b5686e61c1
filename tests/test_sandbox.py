"""Hostile hand-ins, graded by `keras-tx grade-all` with the sandbox: no trick earns a point.

Each hostile student hands in the solutions with one honest mistake (a transposed causal mask,
or unscaled attention) plus a trick that switches to the right answer if it works: reading
the solutions or the recorded references, the network, writing outside its folder, a fork
bomb, a lookup table of the recorded outputs, patching the comparisons, reading another
student's files. Each must score exactly what the same mistake scores without the trick, and
the batch must finish.
"""

import csv
import hashlib
import json
import socket
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest

from grader import sandbox
from grader.gradebook import EXERCISES
from keras_tx_tools import cli
from keras_tx_tools.course import release
from test_grader import grade, submission
from test_grader_variants import ALTERNATIVES, MISTAKES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="needs bubblewrap (bwrap) with namespaces"),
]

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


def test_honest_hand_ins_score_the_same_with_and_without_the_sandbox(tmp_path):
    hand_ins = {"correct": ({}, list(EXERCISES)), "alternatives": (ALTERNATIVES, ["positional_embedding", "masking", "attention"]),
                **{mistake: ({file: patches}, [file.removesuffix(".py")])
                   for mistake, (file, patches, _, _) in MISTAKES.items()}}
    for index, (name, (patches, exercises)) in enumerate(hand_ins.items()):
        folder = submission(tmp_path / str(index), patches)
        plain = grade(tmp_path, "--submission", str(folder), exercises=exercises)
        isolated = grade(tmp_path, "--submission", str(folder), "--isolate", exercises=exercises)
        assert isolated["isolation"].startswith("sandboxed") and plain["isolation"].startswith("none")
        assert _results(isolated) == _results(plain), name
