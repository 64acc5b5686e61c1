"""How many threads a run computes with: no more than the cores that are free.

PyTorch starts as many intra-op threads as the machine has cores. On a
machine that other programs keep busy (a shared JupyterHub, a laptop
compiling something), those threads wait for each other at every operation
and a training step can take several times longer than on one thread. So
`keras-tx train`, `generate` and `evaluate` give PyTorch at most the free
cores: the cores minus the load average of the last minute, at least one.
`--threads N` sets the number instead.

Only PyTorch is set: it is the backend that reads the thread count at run
time (`torch.set_num_threads`); JAX and TensorFlow fix theirs when they start.

>>> free_cores(cores=2, load=7.5), free_cores(cores=16, load=3.2), free_cores(cores=4, load=0.0)
(1, 12, 4)
"""

import os


def free_cores(cores=None, load=None):
    """Cores minus the one-minute load average (rounded down), at least 1.

    Args:
        cores: the machine's cores (default: `os.cpu_count()`).
        load: the load average (default: `os.getloadavg()`'s first value; 0
            where the system has none, as on Windows).
    """
    cores = cores or os.cpu_count() or 1
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, int(cores - load))


def set_threads(threads=None):
    """Gives PyTorch `threads` intra-op threads (None: `free_cores()`); returns the number, or None on
    another backend. Call it after Keras has chosen its backend."""
    import keras

    if keras.backend.backend() != "torch":
        return None
    import torch

    threads = threads or free_cores()
    torch.set_num_threads(threads)
    return threads
