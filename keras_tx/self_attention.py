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

For generation the layer keeps a **key/value cache**: the keys and values of
tokens already seen do not change, so each new token only computes its own
and attends to the cached ones.
"""

import math

import keras
from keras import ops

from keras_tx.attention import attention_weights
from keras_tx.masking import attention_mask


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
            float32 attention weights.
        training: enables dropout.
        cache: optional `(B, 2, max_length, num_heads, head_dim)` keys and
            values of the tokens before `x`; the updated cache is returned.
        cache_index: position of the first token of `x` in the cache.

    Returns `output`, followed by the weights if `return_attention_scores`
    and by the updated cache if `cache` is given.

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
        if not isinstance(embed_dim, int) or not isinstance(num_heads, int) or embed_dim < 1 or num_heads < 1:
            raise ValueError(
                "`embed_dim` and `num_heads` must be positive integers, "
                f"got embed_dim={embed_dim!r}, num_heads={num_heads!r}."
            )
        if embed_dim % num_heads:
            raise ValueError(
                f"`embed_dim` must be divisible by `num_heads`, got embed_dim={embed_dim}, num_heads={num_heads}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got dropout={dropout}.")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
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

    def call(
        self,
        x,
        padding_mask=None,
        return_attention_scores=False,
        training=None,
        cache=None,
        cache_index=0,
    ):
        query = self._split_heads(self.query_dense(x))
        key = self._split_heads(self.key_dense(x))
        value = self._split_heads(self.value_dense(x))
        if cache is not None:
            new_key_value = ops.stack([key, value], axis=1)
            cache = ops.slice_update(cache, (0, 0, cache_index, 0, 0), new_key_value)
            key, value = cache[:, 0], cache[:, 1]

        scale = 1 / math.sqrt(self.head_dim)
        explicit = return_attention_scores or (training and self.dropout > 0)
        weights = None
        if not explicit and self.causal and cache is None and padding_mask is None:
            # Only the causal mask is needed: let the fused kernel build it.
            output = ops.dot_product_attention(query, key, value, scale=scale, is_causal=True)
        else:
            mask = attention_mask(
                ops.shape(query)[1],
                ops.shape(key)[1],
                causal=self.causal or cache is not None,
                offset=cache_index,
                key_padding_mask=padding_mask,
            )
            if explicit:
                output, weights = self._explicit_attention(query, key, value, mask, training)
            else:
                output = ops.dot_product_attention(query, key, value, mask=mask, scale=scale)

        output = self.output_dense(ops.reshape(output, ops.shape(x)[:-1] + (self.embed_dim,)))
        results = (output,)
        if return_attention_scores:
            results += (weights,)
        if cache is not None:
            results += (cache,)
        return results[0] if len(results) == 1 else results

    def _split_heads(self, x):
        """`(B, T, C)` -> `(B, T, num_heads, head_dim)`, the layout of the fused kernel."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, length, self.num_heads, self.head_dim))

    def _explicit_attention(self, query, key, value, mask, training):
        # (B, T, H, D) -> (B, H, T, D): one (T, D) matrix per head.
        query, key, value = (ops.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
        weights = attention_weights(query, key, mask)
        dropped = self.weights_dropout(weights, training=training)
        output = ops.matmul(ops.cast(dropped, value.dtype), value)
        return ops.transpose(output, (0, 2, 1, 3)), weights

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
