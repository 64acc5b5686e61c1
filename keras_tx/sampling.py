"""Choosing the next token from the model's logits.

The model gives one logit per vocabulary entry; ``softmax(logits / T)`` turns
them into probabilities. The **temperature** ``T`` sharpens (``T < 1``) or
flattens (``T > 1``) the distribution, and ``T = 0`` means greedy decoding:
always the most likely token. **Top-k** keeps only the ``k`` most likely
tokens; **top-p** (nucleus sampling) keeps the smallest set of most likely
tokens whose probabilities add up to at least ``p``. Both cut off the long
tail of unlikely tokens that makes sampled text drift into nonsense.

Everything here runs in float32, whatever the model's compute dtype.
"""

import math
import numbers

import keras
from keras import ops

from keras_tx.masking import masked_fill_value
from keras_tx.validation import is_number


def validate_sampling(temperature=1.0, top_k=None, top_p=None):
    """Raise `ValueError` naming the argument if a sampling setting is invalid.

    Returns the settings as Python numbers (NumPy scalars are welcome).

    >>> import numpy as np
    >>> validate_sampling(np.float32(0.5), np.int64(40), None)
    (0.5, 40, None)
    """
    if not is_number(temperature) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"`temperature` must be a finite number >= 0 (0 is greedy), got temperature={temperature!r}.")
    if top_k is not None and (not is_number(top_k, numbers.Integral) or top_k < 1):
        raise ValueError(f"`top_k` must be None or an integer >= 1, got top_k={top_k!r}.")
    if top_p is not None and (not is_number(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"`top_p` must be None or a number in (0, 1], got top_p={top_p!r}.")
    return float(temperature), None if top_k is None else int(top_k), None if top_p is None else float(top_p)


def top_k_filter(logits, k):
    """Keep the `k` largest logits of each row; the others get a weight of zero.

    Example:

    >>> from keras import ops
    >>> filtered = top_k_filter(ops.convert_to_tensor([[1.0, 3.0, 2.0]]), k=2)
    >>> ops.convert_to_numpy(ops.softmax(filtered)).round(2)
    array([[0.  , 0.73, 0.27]], dtype=float32)
    """
    k = min(k, logits.shape[-1])
    kth_largest = ops.top_k(logits, k)[0][..., -1:]
    return ops.where(ops.less(logits, kth_largest), masked_fill_value(logits.dtype), logits)


def top_p_filter(logits, p):
    """Keep the smallest set of most likely tokens whose probability sum reaches `p`.

    A token is kept when the tokens more likely than it add up to less than
    `p`, so the most likely token is always kept.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> logits = ops.log(ops.convert_to_tensor([[0.5, 0.3, 0.15, 0.05]]))
    >>> ops.convert_to_numpy(ops.softmax(top_p_filter(logits, 0.7))).round(3)
    array([[0.625, 0.375, 0.   , 0.   ]], dtype=float32)
    """
    probabilities = ops.softmax(logits, axis=-1)
    sorted_probabilities = ops.top_k(probabilities, probabilities.shape[-1])[0]
    more_likely_mass = ops.cumsum(sorted_probabilities, axis=-1) - sorted_probabilities
    kept = ops.where(ops.less(more_likely_mass, p), sorted_probabilities, 2.0)
    smallest_kept = ops.min(kept, axis=-1, keepdims=True)
    return ops.where(ops.less(probabilities, smallest_kept), masked_fill_value(logits.dtype), logits)


def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, seed=None):
    """Draw one token id per row of `(batch, vocab)` logits; returns `(batch,)` int32.

    `seed` is an int or a `keras.random.SeedGenerator` (pass the same
    generator at every step to get a reproducible sequence).

    Example:

    >>> from keras import ops
    >>> logits = ops.convert_to_tensor([[0.0, 5.0, 1.0]])
    >>> ops.convert_to_numpy(sample_next_token(logits, temperature=0))
    array([1], dtype=int32)
    """
    temperature, top_k, top_p = validate_sampling(temperature, top_k, top_p)
    logits = ops.cast(logits, "float32")
    if temperature == 0:
        return ops.cast(ops.argmax(logits, axis=-1), "int32")
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return ops.cast(keras.random.categorical(logits, 1, seed=seed)[:, 0], "int32")
