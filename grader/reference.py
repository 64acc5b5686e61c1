"""Where the expected answers come from: the solutions, live, or recordings of them.

A *case* is one comparison with the reference: a name, a function that draws its inputs
(sizes, arrays, weights) from a random generator, and a function that runs an exercise
module on those inputs and returns its outputs as NumPy arrays. Every case is drawn twice:
once from the run's seed, and once from `FIXED_SEED`, so that no check's verdict rests on a
lucky draw alone (the draw functions make every axis matter: all sizes distinct, batch >= 2,
length >= 3, heads >= 2, head size >= 2).

* `LiveReference` (the instructor's grader, ``solutions/`` present) draws fresh inputs from
  the run's seed and runs the solutions on them; `grader.instructor.fingerprints` adds what
  each known mistake computes on those inputs, for the diagnosis (`grader.families`).
* `RecordedReference` (the student release: no solution code, no ``grader/instructor/``) reads
  the inputs, outputs and fingerprints that ``python -m grader.record_reference`` saved in
  ``grader/reference/``. Outputs that are not floating point (masks) are stored only as a
  SHA-256 digest, so they cannot be read off.
* `RecordingReference` is a `LiveReference` that keeps every case for saving.

Example::

    for inputs, expected in reference.cases("masking", "causal_mask", draw_length, run_causal_mask):
        check_matches(run_causal_mask(student, inputs)["mask"], expected["mask"], "causal_mask")
"""

import hashlib
import zlib

import numpy as np

from grader.checks import GradingFailure, check_close
from grader.feedback import Feedback, hint_feedback
from grader.seeding import SEEDING_HOOKS, seed_keras  # noqa: F401 -- the checks' seeding


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
            feedback = hint_feedback(hint) or Feedback()
            raise GradingFailure(feedback.located(f"{what}: not the reference's values"))
    else:
        check_close(actual, expected, what, dtype, hint)


FIXED_SEED = 0
"""The seed of the fixed draw every case and property check also runs on."""

GPT_SIZES = {"vocab_size": 23, "max_length": 16, "embed_dim": 12, "num_heads": 3, "num_layers": 2, "ff_dim": 48}
"""The GPT that the checks of the model, the generation and the GPT-2 exercises build: the size of the
GPT-2 checkpoints in ``grader/checkpoints/`` (vocabulary 23, 16 positions, width 12 in 3 heads of 4,
an MLP of 48), fed batches of 2 sequences of `GPT_LENGTH` tokens: every size distinct. One model and
one length for the three, because JAX compiles every operation for its shapes: their checks then
share most of their programs (903 for the solved course instead of 1,201)."""
GPT_LENGTH = 8
"""The length of the sequences a GPT check feeds in one pass; generation grows a prompt of 5 to it."""


def case_rng(seed, exercise, case):
    """The random generator of one case: depends on the seed and the case, not on test order."""
    return np.random.default_rng([seed, zlib.crc32(f"{exercise}/{case}".encode())])


def draw_distinct(rng, *bounds, taken=()):
    """One integer from each ``(low, high)`` range (high excluded), all distinct and none in `taken`.

    Distinct sizes make every axis matter: no swapped or merged axes line up by chance.

    >>> draw_distinct(np.random.default_rng(0), (2, 3), (2, 4), taken=(3,))
    Traceback (most recent call last):
    ...
    ValueError: no size in range(2, 4) is free of [2, 3]
    """
    sizes = {}
    for index in sorted(range(len(bounds)), key=lambda index: bounds[index][1] - bounds[index][0]):  # narrowest first
        low, high = bounds[index]
        free = [size for size in range(low, high) if size not in sizes.values() and size not in taken]
        if not free:
            raise ValueError(f"no size in range({low}, {high}) is free of {sorted({*sizes.values(), *taken})}")
        sizes[index] = int(rng.choice(free))
    return [sizes[index] for index in range(len(bounds))]


def draw_mask(rng, batch, queries, keys):
    """A random boolean mask ``(B, 1, queries, keys)`` in which every query may attend to some key."""
    mask = rng.random((batch, 1, queries, keys)) < 0.6
    mask[..., np.arange(queries), rng.integers(0, keys, queries)] = True
    return mask


def draws(seed):
    """The seeds a check draws from: the run's, then `FIXED_SEED`; with their key suffixes."""
    return {"": seed, "@fixed": FIXED_SEED}


def check_rngs(seed, check):
    """The random generators of the property check named `check`: from `seed`, then the fixed seed."""
    return [np.random.default_rng([drawn, zlib.crc32(check.encode())]) for drawn in draws(seed).values()]


class LiveReference:
    """Runs the reference modules ``{exercise: module}`` on inputs drawn from `seed`."""

    description = "live, from the solutions"

    def __init__(self, modules, seed):
        self.modules = modules
        self.seed = seed
        self._computed = {}

    def cases(self, exercise, name, draw_inputs, run):
        """``[(inputs, expected_outputs)]`` of case `name` of `exercise`: the run's draw, the fixed one.

        Args:
            draw_inputs: ``(rng, reference_module) -> {name: array}``.
            run: ``(module, inputs) -> {name: numpy array}``.
        """
        from grader.instructor.fingerprints import fingerprints  # instructor-only: the release has no live reference

        if (exercise, name) not in self._computed:  # two checks may share a case: compute it once
            module = self.modules[exercise]
            drawn = []
            for suffix, seed in draws(self.seed).items():
                inputs = draw_inputs(case_rng(seed, exercise, name), module)
                drawn.append((inputs, {**run(module, inputs), **fingerprints(exercise, name, inputs)}))
                self.keep(exercise, name + suffix, *drawn[-1])
            self._computed[exercise, name] = drawn
        return self._computed[exercise, name]

    def keep(self, exercise, name, inputs, expected):
        """Called with each case drawn (`RecordingReference` saves them)."""


class RecordingReference(LiveReference):
    """A `LiveReference` that remembers its cases; `save` writes one ``.npz`` per exercise."""

    def __init__(self, modules, seed):
        super().__init__(modules, seed)
        self.recorded = {}

    def keep(self, exercise, name, inputs, expected):
        self.recorded.setdefault(exercise, {})[name] = (inputs, expected)

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

    def cases(self, exercise, name, draw_inputs, run):
        return [self._case(exercise, name + suffix) for suffix in draws(0)]

    def _case(self, exercise, name):
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
