"""Seed Keras per check, the same way in the grader and in the sandbox that runs the student's code.

Example::

    seed_keras(468930, "test_block_matches_reference")   # Keras' initializers draw the same weights
"""

import argparse
import random
import secrets
import zlib

import numpy as np


SEED_LIMIT = 2**32 - 10_000
"""Seeds run from 0 up to this, excluded: NumPy seeds from 32 bits, and `seed_keras` adds up to 9,999."""


def fresh_seed():
    """A fresh seed for a run or a batch: no student can know it beforehand."""
    return secrets.randbelow(1_000_000)


def checked_seed(seed):
    """`seed` (an integer or its text) as a grader seed, or a ValueError naming the allowed values.

    >>> checked_seed("12")
    12
    """
    try:
        number = int(seed)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(seed, (bool, float)) or not 0 <= number < SEED_LIMIT:
        raise ValueError(f"seed must be an integer from 0 to {SEED_LIMIT - 1}, got {seed!r}")
    return number


def seed_argument(text):
    """A command-line type: `checked_seed`, its error in argparse's words (``argument --seed: ...``)."""
    try:
        return checked_seed(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


SEEDING_HOOKS = []
"""Called as ``hook(seed, check)`` after each `seed_keras` (``--isolate`` seeds the submission's process too)."""


def seed_keras(seed, check):
    """Seed Keras' own initializers for the check named `check`, so a run is reproducible.

    Keras draws the seeds of unseeded initializers from Python's `random`. Like
    ``keras.utils.set_random_seed``, this also seeds NumPy and the backend, but it imports
    TensorFlow only on that backend: the import alone would cost seconds of every grading.
    """
    import keras

    for hook in SEEDING_HOOKS:
        hook(seed, check)
    seed = seed + zlib.crc32(check.encode()) % 10_000
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
