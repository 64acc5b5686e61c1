"""How the grader compares a student's results with what they should be.

Every value from the student's code goes through `to_numpy` first: whatever it returned
becomes a plain NumPy array, so an object with a clever ``__eq__`` cannot pass a check.
A failed check raises `GradingFailure` whose message is the feedback the student reads.

Example::

    check_close(student_output, expected, "the attention output",
                hint=lambda: "did you divide by sqrt(d)?")
"""

import os
import re

import keras
import numpy as np

TOLERANCES = {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5)}
"""``dtype -> (rtol, atol)``: a value passes when ``|actual - expected| <= atol + rtol * |expected|``."""


class GradingFailure(AssertionError):
    """A check failed; the message tells the student what is wrong and, if possible, why."""


def tensor(array):
    """A NumPy array (or number) as a tensor of the current backend."""
    return keras.ops.convert_to_tensor(array)


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
        hint: optional callable run only on a mismatch; the message it returns (if any)
            replaces the generic "not the reference's values" one.
        source: whose values `expected` holds, as the generic message says it ("the formula's").
    """
    check_shape(actual, np.shape(expected), what)
    if is_close(actual, expected, dtype):
        return
    message = hint() if hint else None
    if not message:
        actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
        index = np.unravel_index(np.argmax(np.abs(actual - expected)), actual.shape) if actual.size else ()
        message = (
            f"{what}: not {source} values; at index {tuple(int(i) for i in index)} yours is "
            f"{actual[index]:.5g}, expected {expected[index]:.5g}"
        )
    raise GradingFailure(message)


GRADED_PACKAGE = "graded_"
"""The prefix of the packages a submission's files are loaded into (`grader.submission`)."""


def describe_exception(error, folder):
    """``Type: message (file.py, line N)``, pointing at the last line of `folder`'s code it passed.

    Paths inside `folder` and the names of graded packages are left out, so the same files give
    the same message wherever and however often they are graded. An exception re-raised from a
    student's process (`grader.remote`) carries this description already.
    """
    if hasattr(error, "student_description"):
        return error.student_description
    location, package = "", None
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.startswith(str(folder)):
            location = f" ({filename[len(str(folder)) + 1:]}, line {traceback.tb_lineno})"
        package = traceback.tb_frame.f_globals.get("__name__", "").partition(".")[0]
        traceback = traceback.tb_next
    if not location and package and not package.startswith(GRADED_PACKAGE):
        location = f" (raised inside {package}, with no line of your files on the way: look at what your code gave it)"
    message = re.sub(rf"{GRADED_PACKAGE}[0-9a-f]+\.", "", str(error)).replace(f"{folder}{os.sep}", "")
    return f"{type(error).__name__}: {message}{location}"
