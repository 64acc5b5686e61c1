"""Where the expected answers come from: the solutions, live, or recordings of them.

A *case* is one comparison with the reference: a name, a function that draws its inputs
(sizes, arrays, weights) from a random generator, and a function that runs an exercise
module on those inputs and returns its outputs as NumPy arrays.

* `LiveReference` (the instructor's grader, ``solutions/`` present) draws fresh inputs from
  the run's seed and runs the solutions on them.
* `RecordedReference` (the student release, no solution code) reads inputs and outputs that
  ``python -m grader.record_reference`` saved in ``grader/reference/``. Outputs that are not
  floating point (masks) are stored only as a SHA-256 digest, so they cannot be read off.
* `RecordingReference` is a `LiveReference` that keeps every case for saving.

Example::

    inputs, expected = reference.case("masking", "causal_mask", draw_length, run_causal_mask)
    check_matches(run_causal_mask(student, inputs)["mask"], expected["mask"], "causal_mask")
"""

import hashlib
import zlib

import numpy as np

from grader.checks import GradingFailure, check_close


class Digest:
    """The SHA-256 of an array's dtype, shape and bytes: lets a recording check without telling."""

    def __init__(self, hexdigest):
        self.hexdigest = hexdigest

    @classmethod
    def of(cls, array):
        array = np.ascontiguousarray(array)
        header = f"{array.dtype.str}{array.shape}".encode()
        return cls(hashlib.sha256(header + array.tobytes()).hexdigest())


def check_matches(actual, expected, what, dtype="float32", hint=None):
    """`check_close` for float arrays; exact equality (by value or by `Digest`) otherwise."""
    if isinstance(expected, Digest) or not np.issubdtype(np.asarray(expected).dtype, np.floating):
        expected_digest = expected if isinstance(expected, Digest) else Digest.of(expected)
        if Digest.of(actual).hexdigest != expected_digest.hexdigest:
            raise GradingFailure((hint() if hint else None) or f"{what} differs from the reference")
    else:
        check_close(actual, expected, what, dtype, hint)


def case_rng(seed, exercise, case):
    """The random generator of one case: depends on the seed and the case, not on test order."""
    return np.random.default_rng([seed, zlib.crc32(f"{exercise}/{case}".encode())])


class LiveReference:
    """Runs the reference modules ``{exercise: module}`` on inputs drawn from `seed`."""

    description = "live, from the solutions"

    def __init__(self, modules, seed):
        self.modules = modules
        self.seed = seed

    def case(self, exercise, name, draw_inputs, run):
        """``(inputs, expected_outputs)`` of case `name` of `exercise`.

        Args:
            draw_inputs: ``(rng, reference_module) -> {name: array}``.
            run: ``(module, inputs) -> {name: numpy array}``.
        """
        module = self.modules[exercise]
        inputs = draw_inputs(case_rng(self.seed, exercise, name), module)
        return inputs, run(module, inputs)


class RecordingReference(LiveReference):
    """A `LiveReference` that remembers its cases; `save` writes one ``.npz`` per exercise."""

    def __init__(self, modules, seed):
        super().__init__(modules, seed)
        self.recorded = {}

    def case(self, exercise, name, draw_inputs, run):
        inputs, expected = super().case(exercise, name, draw_inputs, run)
        self.recorded.setdefault(exercise, {})[name] = (inputs, expected)
        return inputs, expected

    def save(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        for exercise, cases in self.recorded.items():
            arrays = {"seed": np.asarray(self.seed)}
            for name, (inputs, expected) in cases.items():
                arrays.update({f"{name}:in:{key}": np.asarray(value) for key, value in inputs.items()})
                for key, value in expected.items():
                    if np.issubdtype(value.dtype, np.floating):
                        arrays[f"{name}:out:{key}"] = value
                    else:
                        arrays[f"{name}:sha:{key}"] = np.asarray(Digest.of(value).hexdigest)
            np.savez_compressed(folder / f"{exercise}.npz", **arrays)


class RecordedReference:
    """Serves the cases saved in `folder` by a `RecordingReference`."""

    def __init__(self, folder):
        self.folder = folder
        self._cases = {}

    @property
    def description(self):
        return f"recorded in {self.folder.parent.name}/{self.folder.name}/"

    def case(self, exercise, name, draw_inputs, run):
        if exercise not in self._cases:
            path = self.folder / f"{exercise}.npz"
            if not path.is_file():
                raise FileNotFoundError(f"no recorded reference {path}: run python -m grader.record_reference")
            with np.load(path) as recording:
                self._cases[exercise] = {key: recording[key] for key in recording.files}
        entries = self._cases[exercise]
        inputs, expected = {}, {}
        for key, value in entries.items():
            case, _, kind_key = key.partition(":")
            if case != name:
                continue
            kind, _, field = kind_key.partition(":")
            if kind == "in":
                inputs[field] = value
            else:
                expected[field] = value if kind == "out" else Digest(str(value))
        if not inputs:
            raise KeyError(f"the recording of {exercise} has no case {name!r}: run python -m grader.record_reference")
        return inputs, expected
