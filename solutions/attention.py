"""Exercise 3: scaled dot-product attention and multi-head self-attention.

Lesson
======

1. Queries, keys and values
---------------------------
Attention lets every token gather information from the others. Each token is projected three
times by learned dense layers:

* its **query** ``q`` ("what am I looking for?"),
* its **key** ``k`` ("what do I offer?"),
* its **value** ``v`` ("what do I hand over if chosen?").

The score of query ``i`` against key ``j`` is their dot product, ``q_i . k_j``: large when they
point the same way. Softmax over the keys turns one row of scores into weights that are
positive and sum to 1, and the output for token ``i`` is the weighted sum of the values::

    weights = softmax(Q @ K^T / sqrt(d), axis=keys)      # (..., T_q, T_k)
    output  = weights @ V                                 # (..., T_q, d_v)

with shapes ``Q: (..., T_q, d)``, ``K: (..., T_k, d)``, ``V: (..., T_k, d_v)``. The softmax
runs over the *last* axis, the keys: each query distributes its attention over the keys.

2. Why divide by sqrt(d)
------------------------
If the components of ``q`` and ``k`` have unit variance, ``q . k`` sums ``d`` products and has
variance ``d``. With ``d = 64`` the scores are spread over roughly +-8, softmax becomes almost
one-hot, and its gradients almost vanish. Dividing by ``sqrt(d)`` brings the variance back to 1
whatever the width. The dot product is not the only possible score: additive attention feeds
``q`` and ``k`` through a small network, cosine similarity normalises them first; the scaled
dot product wins because it is a single matrix multiplication.

3. Attention versus a dense layer
---------------------------------
A dense layer applies the *same* fixed matrix to every position, and never mixes positions. In
attention the mixing weights are computed from the input itself: change one token and the
weights every other token gives it change too. The learned part sits in the projections that
make Q, K and V (and the output projection), not in the mixing.

4. Several heads
----------------
One softmax can only focus on one kind of relation at a time. Multi-head attention splits the
width ``C`` into ``H`` heads of ``C // H`` channels each: ``split_heads`` reshapes
``(B, T, C)`` to ``(B, T, H, C // H)`` and moves the head axis forward, ``(B, H, T, C // H)``,
so the attention above runs for every head independently (the leading axes just come along).
``merge_heads`` undoes that and concatenates the heads back into ``(B, T, C)``, and an
output projection (a dense layer) mixes what the heads found and returns to the model width.
Reshaping straight from ``(B, T, C)`` to ``(B, H, T, C // H)`` without the transpose is a
classic bug: it slices the sequence, not the channels. ``C`` must be divisible by ``H``.

Every head has its own slice of the projection matrices and every layer has its own
projections, so each can learn a different question to ask (one follows the previous token,
another the matching bracket, ...). Sharing them would make the heads identical.

``MultiHeadSelfAttention`` owns four ``Dense(embed_dim)`` sublayers (with biases), kept in
attributes named exactly ``query_dense``, ``key_dense``, ``value_dense`` and ``output_dense``
(``self.query_dense = ...``; their Keras ``name=`` is up to you): the grader copies the same
weights into your layer and the reference through these names. It is
*self*-attention because queries, keys and values all come from the same sequence ``x``. Its
mask argument is called ``attention_mask``: Keras reserves the name ``mask`` for its own mask
propagation. Its ``call`` returns only the output, ``(B, T, C)``, not the attention weights
(``scaled_dot_product_attention`` returns both).

5. Precision
------------
The grader feeds float32 tensors and compares your results with the reference's to a relative
``1e-4``: compute the scores and the softmax in float32 (float32 inputs need no cast; a
float16 softmax would not be accurate enough).
"""

import keras
from keras import ops

from .masking import apply_mask


def scaled_dot_product_attention(query, key, value, mask=None):
    """Attend from every query to the keys and average their values.

    Lesson: sections 1 and 2.

    Args:
        query: ``(..., T_q, d)`` float tensor.
        key: ``(..., T_k, d)`` float tensor.
        value: ``(..., T_k, d_v)`` float tensor.
        mask: optional boolean tensor broadcastable to ``(..., T_q, T_k)``; True = may attend.

    Returns:
        ``(output, weights)``: ``output`` is ``(..., T_q, d_v)``, ``weights`` is
        ``(..., T_q, T_k)`` with each row summing to 1 and 0 on masked keys.

    Example:
        >>> x = ops.ones((1, 3, 4))
        >>> output, weights = scaled_dot_product_attention(x, x, x)
        >>> tuple(output.shape), tuple(weights.shape)
        ((1, 3, 4), (1, 3, 3))
    """
    ### BEGIN SOLUTION
    depth = ops.cast(ops.shape(query)[-1], query.dtype)
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(depth)
    if mask is not None:
        scores = apply_mask(scores, mask)
    weights = ops.softmax(scores, axis=-1)
    return ops.matmul(weights, value), weights
    ### END SOLUTION


def split_heads(x, num_heads):
    """Split the channels into heads: ``(B, T, C)`` -> ``(B, num_heads, T, C // num_heads)``.

    Lesson: section 4.

    Example:
        >>> tuple(split_heads(ops.zeros((2, 5, 8)), num_heads=4).shape)
        (2, 4, 5, 2)
    """
    ### BEGIN SOLUTION
    _, length, channels = ops.shape(x)
    x = ops.reshape(x, (-1, length, num_heads, channels // num_heads))
    return ops.transpose(x, (0, 2, 1, 3))
    ### END SOLUTION


def merge_heads(x):
    """Concatenate the heads again: ``(B, H, T, D)`` -> ``(B, T, H * D)``.

    Lesson: section 4.

    Example:
        >>> tuple(merge_heads(ops.zeros((2, 4, 5, 2))).shape)
        (2, 5, 8)
    """
    ### BEGIN SOLUTION
    _, num_heads, length, head_dim = ops.shape(x)
    x = ops.transpose(x, (0, 2, 1, 3))
    return ops.reshape(x, (-1, length, num_heads * head_dim))
    ### END SOLUTION


class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with its four dense projections.

    Lesson: sections 1 to 4.

    Args:
        embed_dim: model width ``C``; must be divisible by `num_heads`, or the
            constructor raises a `ValueError` that names both.
        num_heads: number of heads ``H``.

    Call arguments:
        x: ``(B, T, embed_dim)`` float tensor.
        attention_mask: optional boolean mask broadcastable to ``(B, H, T, T)``.

    Example:
        >>> layer = MultiHeadSelfAttention(embed_dim=8, num_heads=2)
        >>> tuple(layer(ops.zeros((2, 5, 8))).shape)
        (2, 5, 8)
    """

    def __init__(self, embed_dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        ### BEGIN SOLUTION
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim must be divisible by num_heads, got embed_dim={embed_dim} "
                f"and num_heads={num_heads}"
            )
        self.num_heads = num_heads
        self.query_dense = keras.layers.Dense(embed_dim)
        self.key_dense = keras.layers.Dense(embed_dim)
        self.value_dense = keras.layers.Dense(embed_dim)
        self.output_dense = keras.layers.Dense(embed_dim)
        ### END SOLUTION

    def call(self, x, attention_mask=None):
        ### BEGIN SOLUTION
        query = split_heads(self.query_dense(x), self.num_heads)
        key = split_heads(self.key_dense(x), self.num_heads)
        value = split_heads(self.value_dense(x), self.num_heads)
        attended, _ = scaled_dot_product_attention(query, key, value, attention_mask)
        return self.output_dense(merge_heads(attended))
        ### END SOLUTION
