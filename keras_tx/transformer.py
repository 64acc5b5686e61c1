"""What a GPT and an encoder classifier share: embeddings, a stack of blocks, a final LayerNorm.

Both models turn `(B, T)` token ids into `(B, T, C)` vectors with
`TokenAndPositionEmbedding`, pass them through `num_layers` identical
`TransformerBlock`s and normalise the result once more (pre-LN blocks leave
the residual stream unnormalised). They differ only in the mask -- a GPT's
blocks are causal, an encoder's see the whole sequence but not its padding --
and in the head that reads the vectors: next-token logits at every position
for `GPT`, one vector of class logits per sequence for
`TransformerClassifier`. `TransformerStack` is that shared part; each model
adds its head and its own `call`.
"""

import keras
from keras import ops

from keras_tx.embedding import TokenAndPositionEmbedding
from keras_tx.transformer_block import TransformerBlock
from keras_tx.validation import check_positive_integers


class TransformerStack(keras.Model):
    """Token and position embeddings, `num_layers` transformer blocks and a final LayerNorm.

    The base of `GPT` and `TransformerClassifier`; see them for the
    arguments. `causal` is passed to every block; the initializers to the
    embedding tables, the blocks' dense kernels and the two kernels of each
    block that write into the residual stream.

    Example:

    >>> import numpy as np
    >>> from keras_tx import GPT
    >>> model = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
    >>> [array.shape for array in model.attention_maps(np.array([[1, 2, 3]]))]
    [(1, 4, 3, 3), (1, 4, 3, 3)]
    """

    def __init__(
        self, vocab_size, max_length, embed_dim, num_heads, num_layers,
        ff_dim=None,
        dropout=0.0,
        positional="learned",
        activation="gelu",
        causal=False,
        embeddings_initializer="uniform",
        kernel_initializer="glorot_uniform",
        output_kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_integers(num_layers=num_layers)
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.ff_dim = ff_dim or 4 * embed_dim
        self.dropout = dropout
        self.positional = positional
        self.activation = activation
        self.embedding = TokenAndPositionEmbedding(
            vocab_size,
            max_length,
            embed_dim,
            positional=positional,
            embeddings_initializer=embeddings_initializer,
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.blocks = [
            TransformerBlock(
                embed_dim,
                num_heads,
                self.ff_dim,
                dropout=dropout,
                causal=causal,
                kernel_initializer=kernel_initializer,
                output_kernel_initializer=output_kernel_initializer,
                activation=activation,
                dtype=self.dtype_policy,
                name=f"block_{index}",
            )
            for index in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="final_norm")

    def build(self, input_shape):
        self.embedding.build(input_shape)
        hidden_shape = (*input_shape, self.embed_dim)
        for block in self.blocks:
            block.build(hidden_shape)
        self.final_norm.build(hidden_shape)

    def transform(self, x, padding_mask=None, training=None, return_attention_scores=False):
        """`(B, T, C)` vectors through every block and the final LayerNorm.

        Returns `(x, weights)`: the normalised `(B, T, C)` output and, with
        `return_attention_scores`, one `(B, num_heads, T, T)` weight tensor
        per block (otherwise an empty list).
        """
        weights = []
        for block in self.blocks:
            x = block(x, padding_mask=padding_mask, training=training, return_attention_scores=return_attention_scores)
            if return_attention_scores:
                x, block_weights = x
                weights.append(block_weights)
        return self.final_norm(x), weights

    def attention_maps(self, token_ids):
        """The attention weights of every block: a list of `(B, num_heads, T, T)` arrays."""
        _, weights = self(ops.convert_to_tensor(token_ids), return_attention_scores=True)
        return [ops.convert_to_numpy(block_weights) for block_weights in weights]

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            max_length=self.max_length,
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            ff_dim=self.ff_dim,
            dropout=self.dropout,
            positional=self.positional,
            activation=self.activation,
        )
        return config
