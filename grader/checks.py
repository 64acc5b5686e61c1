"""How the grader compares a student's results with what they should be.

Every value from the student's code goes through `to_numpy` first: whatever it returned
becomes a plain NumPy array, so an object with a clever ``__eq__`` cannot pass a check.
A failed check raises `GradingFailure` whose message is the feedback the student reads.

Example:

>>> from grader.feedback import Feedback
>>> check_close(np.ones(3), np.ones(3), "the attention output")  # close enough: nothing happens
>>> try:
...     check_close(np.full(3, 2.0), np.ones(3), "the attention output",
...                 hint=lambda: Feedback(cause="the scores are not scaled", fix="divide them by sqrt(d)"))
... except GradingFailure as failure:
...     print(failure)
the attention output: not the reference's values — the scores are not scaled: divide them by sqrt(d)
"""

import keras
import numpy as np

from grader import wire
from grader.feedback import hint_feedback
from grader.failures import (  # noqa: F401 -- the checks' vocabulary
    GRADED_PACKAGE, GradingFailure, describe_exception, exception_message, failure_feedback)

TOLERANCES = {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5)}
"""``dtype -> (rtol, atol)``: a value passes when ``|actual - expected| <= atol + rtol * |expected|``."""


def tensor(array):
    """A NumPy array (or number) as a tensor of the current backend."""
    return wire.as_tensor(array)


def to_numpy(value, what):
    """`value` as a NumPy array of numbers or booleans, or a `GradingFailure` naming `what`."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:
        array = None
    if array is None or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise GradingFailure(f"{what} returned a {type(value).__name__}, expected a tensor")
    return array


def check_shape(array, shape, what):
    """Fail unless `array` has exactly `shape`."""
    if tuple(array.shape) != tuple(shape):
        raise GradingFailure(f"{what} has shape {tuple(array.shape)}, expected {tuple(shape)}")


def check_dtype(value, dtype, what):
    """Fail unless the tensor `value` has `dtype` (``"float32"``, ``"bool"``, ...)."""
    actual = keras.backend.standardize_dtype(getattr(value, "dtype", type(value)))
    if actual != dtype:
        raise GradingFailure(f"{what} has dtype {actual}, expected {dtype}")


def is_close(actual, expected, dtype="float32"):
    """Whether two arrays of the same shape agree within the tolerance of `dtype`."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    rtol, atol = TOLERANCES[dtype]
    return actual.shape == expected.shape and bool(np.all(np.abs(actual - expected) <= atol + rtol * np.abs(expected)))


def check_close(actual, expected, what, dtype="float32", hint=None, source="the reference's"):
    """Fail unless `actual` matches `expected` within the tolerance of `dtype`.

    Args:
        actual: the student's array (already through `to_numpy`).
        expected: the reference array.
        what: the value's name in the message ("the attention weights").
        dtype: the compute dtype, which sets the tolerance.
        hint: optional callable run only on a mismatch; the `Feedback` it returns (if any; a
            plain string is the cause) says why, placed at "`what`: not the reference's values" unless it names its own place.
        source: whose values `expected` holds, as the generic message says it ("the formula's").
    """
    check_shape(actual, np.shape(expected), what)
    if is_close(actual, expected, dtype):
        return
    feedback = hint_feedback(hint)
    if feedback:
        raise GradingFailure(feedback.located(f"{what}: not {source} values"))
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    index = np.unravel_index(np.argmax(np.abs(actual - expected)), actual.shape) if actual.size else ()
    raise GradingFailure(
        f"{what}: not {source} values; at index {tuple(int(i) for i in index)} yours is "
        f"{actual[index]:.5g}, expected {expected[index]:.5g}"
    )
