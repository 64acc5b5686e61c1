"""Exercise 2: masks, the rules of who may look at whom.

Lesson
======

1. What a mask is
-----------------
Attention (exercise 3) compares every query position with every key position and gets a
``(T, T)`` matrix of scores: row = the token asking, column = the token being looked at. That
matrix is why a longer context costs quadratically in time and memory. A *mask* is a boolean
array of the same shape (or one that broadcasts to it) that says, for each pair, whether the
query **may** attend to the key: True = allowed, False = forbidden. Keeping masks as explicit
boolean arguments (rather than relying on Keras' implicit mask propagation) makes it obvious
which rule applies where.

2. The causal mask
------------------
A GPT is trained to predict the next token at *every* position of a sequence at once. That is
only honest if position ``q`` cannot see positions after it, or it would simply read the answer.
So query ``q`` may attend to key ``k`` exactly when ``k <= q``: the mask is lower triangular,
with the diagonal included (a token may always look at itself; otherwise position 0 would have
nothing at all to attend to). Its upper triangle is the future.

3. The padding mask
-------------------
Sequences in a batch have different lengths, so short ones are filled with a padding id
(usually 0). Real tokens should never attend to padding. A padding mask is True at real tokens;
shaped ``(B, 1, 1, T)`` it broadcasts against scores of shape ``(B, heads, T_query, T_key)``:
one rule per sequence, the same for every head and every query, applied along the keys.

4. Applying a mask
------------------
Softmax turns scores into weights, and ``exp(score)`` is never exactly 0. To give a forbidden
key zero weight we make its score hugely negative *before* the softmax, so that
``exp(score - max)`` underflows to 0. "Hugely negative" has to fit the dtype: ``-1e9`` is fine
in float32 but float16 stops at about ``-65504``, so ``-1e9`` becomes ``-inf``, and
``0 * -inf`` or ``-inf - (-inf)`` give NaN, which then spreads through the whole network.
Use a value derived from the dtype's own range (``numpy.finfo(dtype)``), not a constant. Masking
*after* the softmax is a different (wrong) computation: the rows would no longer sum to 1.
"""

import keras
import numpy as np
from keras import ops


def causal_mask(length):
    """The mask that lets each position see itself and the past, never the future.

    Lesson: section 2.

    Args:
        length: sequence length ``T``.

    Returns:
        A ``(T, T)`` boolean tensor, True where key position <= query position.

    Example:
        >>> ops.convert_to_numpy(causal_mask(3)).astype(int).tolist()
        [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    ### BEGIN SOLUTION
    query_positions = ops.arange(length)[:, None]
    key_positions = ops.arange(length)[None, :]
    return key_positions <= query_positions
    ### END SOLUTION


def padding_mask(token_ids, pad_id=0):
    """The mask that hides padding tokens from attention.

    Lesson: section 3.

    Args:
        token_ids: integer tensor of shape ``(B, T)``.
        pad_id: the id used for padding.

    Returns:
        A ``(B, 1, 1, T)`` boolean tensor, True where the token is not padding.

    Example:
        >>> mask = padding_mask(ops.convert_to_tensor([[5, 7, 0]]))
        >>> ops.convert_to_numpy(mask).reshape(-1).tolist()
        [True, True, False]
    """
    ### BEGIN SOLUTION
    return ops.not_equal(token_ids, pad_id)[:, None, None, :]
    ### END SOLUTION


def apply_mask(scores, mask):
    """Push the scores of forbidden positions so low that softmax gives them ~0 weight.

    Lesson: section 4.

    Args:
        scores: float tensor of attention scores, ``(..., T_query, T_key)``.
        mask: boolean tensor broadcastable to `scores`; True = may attend.

    Returns:
        `scores` where `mask` is True; a large negative number that is finite in the dtype of
        `scores` (float16 included) where `mask` is False.

    Example:
        >>> masked = apply_mask(ops.zeros((2, 2)), causal_mask(2))
        >>> bool(ops.convert_to_numpy(masked)[0, 1] < -1e4)
        True
    """
    ### BEGIN SOLUTION
    dtype = keras.backend.standardize_dtype(scores.dtype)
    # Half the most negative finite value: low enough that exp() gives exactly 0, high enough
    # that adding it to any score of a sane size stays finite.
    large_negative = 0.5 * float(np.finfo(dtype).min)
    forbidden = ops.cast(ops.logical_not(mask), dtype)
    return scores + forbidden * large_negative
    ### END SOLUTION
