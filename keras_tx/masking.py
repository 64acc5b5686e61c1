"""Attention masks: which keys each query is allowed to look at.

Attention compares every query with every key, so it needs to be told what
it must not see. Two masks cover a GPT and an encoder:

* the **causal mask** hides the future: a token may attend to itself and to
  earlier tokens only, so predicting token ``t + 1`` from tokens ``0..t``
  cannot cheat by reading it;
* the **padding mask** hides padding tokens that only exist to make the
  sequences of a batch the same length.

Masks are boolean tensors where ``True`` means "may attend". They are turned
into attention weights of zero by replacing the masked scores with a very
negative number before the softmax (`apply_mask`). That number must be
*finite in the dtype of the scores*: ``-1e9`` becomes ``-inf`` in float16, and
a row of ``-inf`` turns the softmax into ``nan``.
"""

import ml_dtypes
from keras import backend, ops


def causal_mask(query_length, key_length=None, offset=0):
    """Boolean `(query_length, key_length)` mask, True where key <= query.

    Query ``i`` sits at absolute position ``offset + i``; key ``j`` at
    position ``j``. ``offset`` is used when decoding with a key/value cache:
    the new tokens come after the ``offset`` tokens already in the cache.

    Example:

    >>> from keras import ops
    >>> ops.convert_to_numpy(causal_mask(3)).astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    key_length = query_length if key_length is None else key_length
    query_positions, key_positions = _positions(query_length, key_length, offset)
    return ops.less_equal(key_positions, query_positions)


def _positions(query_length, key_length, offset):
    """Absolute positions as a `(Tq, 1)` column of queries, `(1, Tk)` row of keys."""
    query_positions = ops.expand_dims(ops.arange(query_length) + offset, 1)
    key_positions = ops.expand_dims(ops.arange(key_length), 0)
    return query_positions, key_positions


def padding_mask(token_ids, pad_id=0):
    """Boolean `(batch, length)` mask, True for real tokens, False for padding.

    Example:

    >>> from keras import ops
    >>> ops.convert_to_numpy(padding_mask([[5, 7, 0, 0]]))
    array([[ True,  True, False, False]])
    """
    return ops.not_equal(token_ids, pad_id)


def masked_fill_value(dtype):
    """The most negative finite number of `dtype`: the score of a masked key.

    Example:

    >>> masked_fill_value("float16")
    -65504.0
    """
    return float(ml_dtypes.finfo(backend.standardize_dtype(dtype)).min)


def apply_mask(scores, mask):
    """Replace the scores where `mask` is False by `masked_fill_value`.

    After the softmax those keys get a weight of (numerically) zero. A row in
    which every key is masked gets equal, finite weights rather than ``nan``.

    Example:

    >>> from keras import ops
    >>> scores = ops.zeros((2, 2))
    >>> ops.convert_to_numpy(ops.softmax(apply_mask(scores, causal_mask(2))))
    array([[1. , 0. ],
           [0.5, 0.5]], dtype=float32)
    """
    return ops.where(mask, scores, masked_fill_value(scores.dtype))


def attention_mask(query_length, key_length, causal=False, offset=0, key_padding_mask=None):
    """Combine the causal and padding masks into one `(batch, 1, Tq, Tk)` mask.

    Returns ``None`` when nothing is masked. The mask always lets a query see
    the key at its own position: only padding queries can lose every other
    key, and an empty row would give ``nan`` in fused attention kernels. This
    never lets a real token see padding or the future.

    Example:

    >>> from keras import ops
    >>> mask = attention_mask(3, 3, key_padding_mask=[[True, True, False]])
    >>> ops.convert_to_numpy(mask).shape
    (1, 1, 3, 3)
    """
    if not causal and key_padding_mask is None:
        return None
    query_positions, key_positions = _positions(query_length, key_length, offset)
    mask = ops.ones((1, 1, query_length, key_length), dtype="bool")
    if causal:
        mask = causal_mask(query_length, key_length, offset)[None, None]
    if key_padding_mask is not None:
        key_padding_mask = ops.cast(key_padding_mask, "bool")
        mask = ops.logical_and(mask, key_padding_mask[:, None, None, :])
    return ops.logical_or(mask, ops.equal(key_positions, query_positions))
