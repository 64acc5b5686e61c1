"""Checking the sizes a layer is built with, so that a bad one fails at once and by name.

A width of 0, a head count of 2.5 or `True` layers would otherwise surface much later, as a
shape error deep inside a matrix product. Every layer checks its sizes here, in its
constructor, and the message names the argument.

>>> check_positive_integers(embed_dim=64, num_heads=0)
Traceback (most recent call last):
...
ValueError: `num_heads` must be a positive integer, got num_heads=0.
"""


def check_positive_integers(**values):
    """Raise a `ValueError` naming the first of `values` that is not a positive integer (bools are not)."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {name}={value!r}.")
