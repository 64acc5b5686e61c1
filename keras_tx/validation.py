"""Checking the sizes a layer is built with, so that a bad one fails at once and by name.

A width of 0, a head count of 2.5 or `True` layers would otherwise surface much later, as a
shape error deep inside a matrix product. Every layer checks its sizes here, in its
constructor, and the message names the argument. Generation's arguments (a token count, a
seed, a temperature) are checked with `is_number`, which also takes NumPy scalars.

>>> check_positive_integers(embed_dim=64, num_heads=0)
Traceback (most recent call last):
...
ValueError: `num_heads` must be a positive integer, got num_heads=0.
"""

import numbers


def check_positive_integers(**values):
    """Raise a `ValueError` naming the first of `values` that is not a positive integer (bools are not)."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {name}={value!r}.")


def is_number(value, kind=numbers.Real):
    """Whether `value` is a number of `kind` (`numbers.Real` or `numbers.Integral`): NumPy scalars are, bools are not.

    >>> import numpy as np
    >>> is_number(np.int64(3), numbers.Integral), is_number(True, numbers.Integral), is_number(np.float32(0.5))
    (True, False, True)
    """
    return isinstance(value, kind) and not isinstance(value, bool)
