"""The transformer block: attention, then a position-wise MLP, each with a residual.

Attention lets tokens exchange information; the MLP (a dense layer four times
wider than the model, a GELU, and a dense layer back) then processes each
token on its own. The GELU, ``x * Phi(x)`` with ``Phi`` the standard normal
CDF, comes in two forms: the exact one (with ``erf``, the default here, as in
BERT and most models since) and GPT-2's tanh approximation
``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``. They differ
by at most 5e-4, enough to change the logits of a model trained with the
other. Each of the two is wrapped in a **residual connection**,
``x + f(x)``: the block only learns a correction to its input, and gradients
flow straight through the additions, which is what lets deep stacks train.

**Layer normalisation** keeps the activations at a steady scale. The original
transformer normalises after each residual addition (post-LN,
``norm(x + f(x))``); GPT-2 and most models since normalise the input of each
branch (pre-LN, ``x + f(norm(x))``), which trains more stably.
"""

import keras

from keras_tx.self_attention import MultiHeadSelfAttention
from keras_tx.validation import check_positive_integers

ACTIVATIONS = ("gelu", "gelu_approximate")


@keras.saving.register_keras_serializable(package="keras_tx")
class TransformerBlock(keras.layers.Layer):
    """Self-attention and a GELU MLP, each with a residual connection and LayerNorm.

    Args:
        embed_dim: width of the input and output vectors.
        num_heads: number of attention heads; must divide `embed_dim`.
        ff_dim: width of the hidden layer of the MLP (typically 4 x embed_dim).
        dropout: dropout rate on attention weights and on both residual branches.
        causal: if True, tokens attend only to themselves and earlier tokens.
        norm_first: True for pre-LN (GPT-2), False for the paper's post-LN.
        kernel_initializer: initializer of the dense kernels.
        output_kernel_initializer: initializer of the two kernels that write
            into the residual stream (attention output and MLP output).
        activation: the MLP's nonlinearity, ``"gelu"`` (exact, with erf) or
            ``"gelu_approximate"`` (the tanh form that GPT-2 was trained with).

    Call arguments are those of `MultiHeadSelfAttention.call`, and so is the
    return value: the output, or `(output, weights)` with
    `return_attention_scores`. Generation calls `decode` instead.

    Example:

    >>> import numpy as np
    >>> block = TransformerBlock(embed_dim=16, num_heads=2, ff_dim=64, causal=True)
    >>> tuple(block(np.zeros((2, 5, 16), "float32")).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        embed_dim,
        num_heads,
        ff_dim,
        dropout=0.0,
        causal=False,
        norm_first=True,
        kernel_initializer="glorot_uniform",
        output_kernel_initializer=None,
        activation="gelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_integers(ff_dim=ff_dim)
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {ACTIVATIONS}, got activation={activation!r}.")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.causal = causal
        self.norm_first = norm_first
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_kernel_initializer = keras.initializers.get(output_kernel_initializer or kernel_initializer)
        self.attention = MultiHeadSelfAttention(
            embed_dim,
            num_heads,
            dropout=dropout,
            causal=causal,
            kernel_initializer=self.kernel_initializer,
            output_kernel_initializer=self.output_kernel_initializer,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="norm1")
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="norm2")
        self.ffn_in = keras.layers.Dense(
            ff_dim,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="ffn_in",
        )
        self.ffn_out = keras.layers.Dense(
            embed_dim,
            kernel_initializer=self.output_kernel_initializer,
            dtype=self.dtype_policy,
            name="ffn_out",
        )
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.ffn_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.attention.build(input_shape)
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.ffn_in.build(input_shape)
        self.ffn_out.build((*input_shape[:-1], self.ff_dim))

    def call(self, x, padding_mask=None, return_attention_scores=False, training=None):
        attended = self.attention(
            self._attention_input(x),
            padding_mask=padding_mask,
            return_attention_scores=return_attention_scores,
            training=training,
        )
        attended, weights = attended if return_attention_scores else (attended, None)
        x = self._mlp_sublayer(self._add_attended(x, attended, training), training)
        return (x, weights) if return_attention_scores else x

    def decode(self, x, cache, cache_index, padding_mask=None):
        """The block on new tokens `x`, with the attention's key/value `cache`.

        Arguments and the returned `(output, cache)` are those of
        `MultiHeadSelfAttention.decode`.

        Example:

        >>> from keras import ops
        >>> block = TransformerBlock(embed_dim=16, num_heads=2, ff_dim=64, causal=True)
        >>> cache = ops.zeros((1, 2, 8, 2, 8))  # (B, keys and values, slots, H, D)
        >>> output, cache = block.decode(ops.ones((1, 3, 16)), cache, cache_index=0)
        >>> tuple(output.shape)
        (1, 3, 16)
        """
        attended, cache = self.attention.decode(self._attention_input(x), cache, cache_index, padding_mask)
        return self._mlp_sublayer(self._add_attended(x, attended)), cache

    def _attention_input(self, x):
        return self.norm1(x) if self.norm_first else x

    def _add_attended(self, x, attended, training=None):
        """The attention's residual connection: `x + attended`, then norm1 if post-LN."""
        x = x + self.attention_dropout(attended, training=training)
        return x if self.norm_first else self.norm1(x)

    def _mlp_sublayer(self, x, training=None):
        """The MLP in its residual connection: `x + mlp(norm2(x))` (pre-LN) or `norm2(x + mlp(x))` (post-LN)."""
        mlp_input = self.norm2(x) if self.norm_first else x
        hidden = keras.activations.gelu(self.ffn_in(mlp_input), approximate=self.activation == "gelu_approximate")
        x = x + self.ffn_dropout(self.ffn_out(hidden), training=training)
        return x if self.norm_first else self.norm2(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            ff_dim=self.ff_dim,
            dropout=self.dropout,
            causal=self.causal,
            norm_first=self.norm_first,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            output_kernel_initializer=keras.initializers.serialize(self.output_kernel_initializer),
            activation=self.activation,
        )
        return config

