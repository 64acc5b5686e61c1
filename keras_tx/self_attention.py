"""Multi-head self-attention: every token attends to the tokens of its own sequence.

The input `(B, T, C)` is projected into queries, keys and values, each split
into `num_heads` heads of size `C / num_heads`. Each head attends in its own
subspace -- one head may track the previous token, another the subject of the
sentence -- and has its own slice of the projection weights. The heads'
outputs are concatenated back to `(B, T, C)` and the output projection mixes
them.

Two paths compute the same thing:

* the **fused path**, `keras.ops.dot_product_attention`, runs the backend's
  fastest kernel (flash attention on accelerators) and never materialises the
  `T x T` weights. It is used whenever nothing needs those weights;
* the **explicit path**, `keras_tx.attention.attention_weights`, computes the
  weights so that they can be returned (for plots and lessons) or dropped out.

`call` is the textbook path: project, split into heads, weigh the values,
merge the heads, project. Generation uses `decode` instead, with a
**key/value cache**: the keys and values of tokens already seen do not
change, so each new token only computes its own, writes them into the cache
and attends to the cached ones.
"""

import math

import keras
from keras import ops

from keras_tx.attention import attention_weights
from keras_tx.masking import attention_mask
from keras_tx.validation import check_positive_integers


@keras.saving.register_keras_serializable(package="keras_tx")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with separate query/key/value/output projections.

    Args:
        embed_dim: width of the input and output vectors.
        num_heads: number of heads; must divide `embed_dim`.
        dropout: dropout rate on the attention weights during training.
        causal: if True, each token attends only to itself and earlier tokens.
        kernel_initializer: initializer of the query/key/value kernels.
        output_kernel_initializer: initializer of the output projection
            (defaults to `kernel_initializer`).

    Call arguments:
        x: `(B, T, embed_dim)` inputs.
        padding_mask: optional `(B, T)` bool/int, True (1) for real tokens.
        return_attention_scores: also return the `(B, num_heads, T, T)`
            float32 attention weights (the softmax output; the argument
            keeps the name that `keras.layers.MultiHeadAttention` gives it).
        training: enables dropout.

    Returns `output`, or `(output, weights)` with `return_attention_scores`.
    Generation calls `decode` instead, which also writes a key/value cache.

    Where exercise 3 (`exercises/attention.py`) differs, and why:

    * heads are `(B, T, H, D)`, not `(B, H, T, D)`: the layout that
      `keras.ops.dot_product_attention` and the cache take;
    * a `(B, T)` `padding_mask`, not a full `attention_mask`: the layer adds
      the causal part itself (`causal`), so the fused kernel can build it.

    Example:

    >>> import numpy as np
    >>> layer = MultiHeadSelfAttention(embed_dim=16, num_heads=4, causal=True)
    >>> tuple(layer(np.zeros((2, 5, 16), "float32")).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        embed_dim,
        num_heads,
        dropout=0.0,
        causal=False,
        kernel_initializer="glorot_uniform",
        output_kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_integers(embed_dim=embed_dim, num_heads=num_heads)
        if embed_dim % num_heads:
            raise ValueError(
                f"`embed_dim` must be divisible by `num_heads`, got embed_dim={embed_dim}, num_heads={num_heads}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got dropout={dropout}.")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scale = 1 / math.sqrt(self.head_dim)  # the 1 / sqrt(d) of scaled dot-product attention
        self.dropout = dropout
        self.causal = causal
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_kernel_initializer = keras.initializers.get(output_kernel_initializer or kernel_initializer)

        def projection(name, initializer):
            return keras.layers.Dense(
                embed_dim, kernel_initializer=initializer, dtype=self.dtype_policy, name=name
            )

        self.query_dense = projection("query_dense", self.kernel_initializer)
        self.key_dense = projection("key_dense", self.kernel_initializer)
        self.value_dense = projection("value_dense", self.kernel_initializer)
        self.output_dense = projection("output_dense", self.output_kernel_initializer)
        self.weights_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        for projection in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            projection.build(input_shape)

    def call(self, x, padding_mask=None, return_attention_scores=False, training=None):
        # Project, then split the channels into heads: (B, T, C) -> 3 x (B, T, H, D).
        query, key, value = self._project_to_heads(x)
        # Weigh the values by how well each key matches each query: (B, T, H, D).
        if return_attention_scores or (training and self.dropout > 0):
            output, weights = self._explicit_attention(query, key, value, padding_mask, training)
        else:
            output, weights = self._fused_attention(query, key, value, padding_mask), None
        # Merge the heads side by side, then let the output projection mix them: (B, T, C).
        output = self.output_dense(self._merge_heads(output))
        return (output, weights) if return_attention_scores else output

    def decode(self, x, cache, cache_index, padding_mask=None):
        """Attend from new tokens to themselves and to the tokens in `cache`.

        Args:
            x: `(B, T, embed_dim)` the new tokens, at positions
                `cache_index .. cache_index + T - 1`.
            cache: `(B, 2, S, num_heads, head_dim)` the keys and values of the
                tokens before `x`, in `S` slots (the slots after them are unused).
            cache_index: the position of the first token of `x`.
            padding_mask: optional `(B, S)` bool, True for the real tokens
                among the cache's slots (a left-padded batch of prompts).

        Returns:
            `(output, cache)`: the `(B, T, embed_dim)` output, and the cache
            with the keys and values of `x` written in.

        Example:

        >>> from keras import ops
        >>> layer = MultiHeadSelfAttention(embed_dim=16, num_heads=4, causal=True)
        >>> cache = ops.zeros((2, 2, 8, 4, 4))  # (B, keys and values, slots, H, D)
        >>> output, cache = layer.decode(ops.ones((2, 3, 16)), cache, cache_index=0)
        >>> tuple(output.shape), tuple(cache.shape)
        ((2, 3, 16), (2, 2, 8, 4, 4))
        """
        query, key, value = self._project_to_heads(x)
        key, value, cache = self._write_cache(cache, key, value, cache_index)
        # The causal mask also hides the slots after the new tokens, not yet written.
        mask = attention_mask(
            ops.shape(query)[1], ops.shape(key)[1], causal=True, offset=cache_index, key_padding_mask=padding_mask
        )
        output = ops.dot_product_attention(query, key, value, mask=mask, scale=self.scale)
        return self.output_dense(self._merge_heads(output)), cache

    def _project_to_heads(self, x):
        """`(B, T, C)` -> the queries, keys and values, each `(B, T, num_heads, head_dim)`."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        heads = (batch, length, self.num_heads, self.head_dim)
        return tuple(ops.reshape(dense(x), heads) for dense in (self.query_dense, self.key_dense, self.value_dense))

    def _merge_heads(self, x):
        """`(B, T, num_heads, head_dim)` -> `(B, T, C)`: the heads side by side."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, length, self.embed_dim))

    @staticmethod
    def _write_cache(cache, key, value, cache_index):
        """Write the new keys and values at `cache_index`: `(all keys, all values, cache)`."""
        cache = ops.slice_update(cache, (0, 0, cache_index, 0, 0), ops.stack([key, value], axis=1))
        return cache[:, 0], cache[:, 1], cache

    def _fused_attention(self, query, key, value, padding_mask):
        """The backend's fused kernel, which never materialises the weights."""
        if self.causal and padding_mask is None:
            # Only the causal mask is needed: the kernel builds it without reading a T x T tensor.
            return ops.dot_product_attention(query, key, value, scale=self.scale, is_causal=True)
        mask = self._mask(query, padding_mask)
        return ops.dot_product_attention(query, key, value, mask=mask, scale=self.scale)

    def _explicit_attention(self, query, key, value, padding_mask, training):
        """Attention through its `(B, H, T, T)` weights, which it returns and drops out."""
        mask = self._mask(query, padding_mask)
        # (B, T, H, D) -> (B, H, T, D): one (T, D) matrix per head.
        query, key, value = (ops.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
        weights = attention_weights(query, key, mask)
        dropped = self.weights_dropout(weights, training=training)
        output = ops.matmul(ops.cast(dropped, value.dtype), value)
        return ops.transpose(output, (0, 2, 1, 3)), weights

    def _mask(self, query, padding_mask):
        """The `(B, 1, T, T)` mask of `(B, T, H, D)` queries attending to their own sequence, or None."""
        length = ops.shape(query)[1]
        return attention_mask(length, length, causal=self.causal, key_padding_mask=padding_mask)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            dropout=self.dropout,
            causal=self.causal,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            output_kernel_initializer=keras.initializers.serialize(self.output_kernel_initializer),
        )
        return config
