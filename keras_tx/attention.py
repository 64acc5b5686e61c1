"""Scaled dot-product attention, the operation at the heart of a transformer.

Every token emits a **query** ("what am I looking for?"), a **key** ("what do I
contain?") and a **value** ("what do I pass on?"). The score of query ``i``
for key ``j`` is their dot product; dividing by ``sqrt(d)`` keeps the scores'
spread independent of the vector size ``d`` so that the softmax does not
saturate. The softmax over the keys turns each query's scores into weights
that sum to 1, and the output is the weighted sum of the values.

Unlike a dense layer, whose mixing weights are fixed parameters, attention
computes its mixing weights from the input itself.

These functions work on any leading dimensions: ``(..., T, d)``, typically
``(batch, heads, T, d)``.
"""

import math

from keras import ops

from keras_tx.masking import apply_mask


def attention_weights(query, key, mask=None):
    """Softmax attention weights `(..., Tq, Tk)` of queries over keys.

    `mask` is boolean and broadcastable to `(..., Tq, Tk)`; True means the
    query may attend to the key. The softmax is computed in float32 even for
    float16/bfloat16 inputs, and the weights are returned in float32.

    Example:

    >>> from keras import ops
    >>> q = k = ops.ones((1, 3, 4))
    >>> ops.convert_to_numpy(attention_weights(q, k))[0, 0]
    array([0.33333334, 0.33333334, 0.33333334], dtype=float32)
    """
    depth = query.shape[-1]
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / math.sqrt(depth)
    scores = ops.cast(scores, "float32")
    if mask is not None:
        scores = apply_mask(scores, mask)
    return ops.softmax(scores, axis=-1)


def scaled_dot_product_attention(query, key, value, mask=None):
    """`softmax(query @ key^T / sqrt(d)) @ value`, returning `(output, weights)`.

    Shapes: query `(..., Tq, d)`, key `(..., Tk, d)`, value `(..., Tk, dv)`;
    output `(..., Tq, dv)` in the dtype of `value`, weights `(..., Tq, Tk)`.

    Example:

    >>> from keras import ops
    >>> from keras_tx import causal_mask
    >>> x = ops.ones((2, 4, 8))
    >>> output, weights = scaled_dot_product_attention(x, x, x, causal_mask(4))
    >>> tuple(output.shape), tuple(weights.shape)
    ((2, 4, 8), (2, 4, 4))
    """
    weights = attention_weights(query, key, mask)
    output = ops.matmul(ops.cast(weights, value.dtype), value)
    return output, weights
