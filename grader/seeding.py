"""Seed Keras per check, the same way in the grader and in the sandbox that runs the student's code.

Example::

    seed_keras(468930, "test_block_matches_reference")   # Keras' initializers draw the same weights
"""

import random
import zlib

import numpy as np


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
