"""Float32 means float32: full-precision float32 matrix products while grading.

On some accelerators float32 matmuls run at reduced (TF32-class) precision by default: JAX on
an NVIDIA GPU, or TensorFlow and PyTorch once told to. Two correct formulations can then
differ by 1e-3, more than the grader's tolerance. `full_float32_precision` pins each backend
to full precision and restores the previous settings afterwards, since grading may run inside
the caller's process. On a CPU the settings change nothing.

Example::

    with full_float32_precision():
        assert float32_precision() == FULL[keras.backend.backend()]
"""

import contextlib

import keras


def float32_precision():
    """The current backend's float32 matmul settings, as ``{name: value}``."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return {"matmul": torch.get_float32_matmul_precision(), "cudnn_tf32": torch.backends.cudnn.allow_tf32}
    if backend == "jax":
        import jax

        return {"matmul": jax.config.jax_default_matmul_precision}
    if backend == "tensorflow":
        import tensorflow as tf

        return {"tf32": tf.config.experimental.tensor_float_32_execution_enabled()}
    return {}


FULL = {"torch": {"matmul": "highest", "cudnn_tf32": False}, "jax": {"matmul": "highest"},
        "tensorflow": {"tf32": False}}
"""The settings `full_float32_precision` pins, per backend."""


def set_float32_precision(settings):
    """Apply `settings` as returned by `float32_precision` (of the current backend)."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_float32_matmul_precision(settings["matmul"])
        torch.backends.cudnn.allow_tf32 = settings["cudnn_tf32"]
    elif backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", settings["matmul"])
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(settings["tf32"])


@contextlib.contextmanager
def full_float32_precision():
    """Run the block with full-precision float32 matmuls; restore the previous settings after."""
    previous = float32_precision()
    set_float32_precision(FULL.get(keras.backend.backend(), {}))
    try:
        yield
    finally:
        set_float32_precision(previous)
