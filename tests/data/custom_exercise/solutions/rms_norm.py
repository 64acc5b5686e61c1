"""Exercise 9: RMSNorm, a LayerNorm without the mean.

Lesson
======

1. What it normalises
---------------------
LayerNorm (exercise 4) centres each vector on its mean and divides it by its standard
deviation. RMSNorm, the normalisation of LLaMA and most recent language models, skips the
centring: it divides each vector by its *root mean square* and multiplies by a learned scale
``γ``, one number per feature::

    rms(x) = sqrt(mean(x²) + ε)          over the last axis
    rms_norm(x) = x / rms(x) · γ

``ε`` keeps the division finite for a vector of zeros. There is no offset ``β``: a vector keeps
its direction, only its length changes, and one pass over ``x`` computes it.

2. What to check in your own code
---------------------------------
Take the mean over the **last** axis only and keep that axis (``keepdims=True``), so that ``rms``
has shape ``(..., 1)`` and broadcasts against ``x``. Multiplying ``x`` by a positive number must
not change the output (up to ``ε``): that is the point of normalising.
"""

from keras import ops


def rms_norm(x, scale, epsilon=1e-6):
    """Divide each vector of `x` (last axis) by its root mean square, then multiply by `scale`.

    Lesson: section 1.

    Args:
        x: a float tensor ``(..., C)``.
        scale: the learned ``γ``, shaped ``(C,)``.
        epsilon: added to the mean square before the square root.

    Returns:
        A tensor shaped like `x`.

    Example:
        >>> ops.convert_to_numpy(rms_norm(ops.convert_to_tensor([[3.0, 4.0]]), ops.ones((2,)), 0.0)).round(3).tolist()
        [[0.849, 1.131]]
    """
    ### BEGIN SOLUTION
    mean_square = ops.mean(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(mean_square + epsilon) * scale
    ### END SOLUTION
