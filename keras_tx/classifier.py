"""A transformer encoder that classifies whole sequences (e.g. IMDB reviews).

Unlike GPT, an encoder lets every token see the whole sequence (no causal
mask) -- but never the padding that fills short sequences up to the batch
length. The token vectors of the last block are averaged over the real tokens
into one vector per sequence, and a dense layer maps it to class logits.
"""

import keras
from keras import ops

from keras_tx.embedding import TokenAndPositionEmbedding
from keras_tx.masking import padding_mask
from keras_tx.transformer_block import TransformerBlock, run_blocks


@keras.saving.register_keras_serializable(package="keras_tx")
class TransformerClassifier(keras.Model):
    """Encoder + masked mean pooling + dense head: `(B, T)` ids -> `(B, num_classes)` logits.

    Args:
        vocab_size, max_length, embed_dim, num_heads, num_layers: as for `GPT`.
        num_classes: number of output classes.
        ff_dim: hidden width of the MLPs (default `4 * embed_dim`).
        dropout: dropout rate inside the blocks and before the head.
        pad_id: the token id used for padding; it is ignored everywhere.
        positional: ``"learned"`` or ``"sinusoidal"`` position embeddings.
        activation: the MLPs' GELU: ``"gelu"`` (exact, with erf, as in BERT)
            or ``"gelu_approximate"`` (the tanh form).

    Example:

    >>> import numpy as np
    >>> model = TransformerClassifier(vocab_size=100, max_length=8, embed_dim=16,
    ...                               num_heads=2, num_layers=1, num_classes=2)
    >>> tuple(model(np.array([[5, 6, 7, 0, 0]])).shape)
    (1, 2)
    """

    def __init__(
        self,
        vocab_size,
        max_length,
        embed_dim,
        num_heads,
        num_layers,
        num_classes,
        ff_dim=None,
        dropout=0.1,
        pad_id=0,
        positional="learned",
        activation="gelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_layers", num_layers), ("num_classes", num_classes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {name}={value!r}.")
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.num_classes = num_classes
        self.ff_dim = ff_dim or 4 * embed_dim
        self.dropout = dropout
        self.pad_id = pad_id
        self.positional = positional
        self.activation = activation

        self.embedding = TokenAndPositionEmbedding(
            vocab_size, max_length, embed_dim, positional=positional, dtype=self.dtype_policy, name="embedding"
        )
        self.blocks = [
            TransformerBlock(
                embed_dim,
                num_heads,
                self.ff_dim,
                dropout=dropout,
                activation=activation,
                dtype=self.dtype_policy,
                name=f"block_{index}",
            )
            for index in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="final_norm")
        self.head_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.head = keras.layers.Dense(num_classes, dtype=self.dtype_policy, name="head")

    def build(self, input_shape):
        self.embedding.build(input_shape)
        hidden_shape = (*input_shape, self.embed_dim)
        for block in self.blocks:
            block.build(hidden_shape)
        self.final_norm.build(hidden_shape)
        self.head.build((input_shape[0], self.embed_dim))

    def call(self, token_ids, training=None, return_attention_scores=False):
        """Class logits `(B, num_classes)`; with `return_attention_scores`, also
        one `(B, num_heads, T, T)` weight tensor per block."""
        real_tokens = padding_mask(token_ids, self.pad_id)
        x, scores = run_blocks(
            self.blocks,
            self.embedding(token_ids),
            padding_mask=real_tokens,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        pooled = masked_mean(self.final_norm(x), real_tokens)
        logits = ops.cast(self.head(self.head_dropout(pooled, training=training)), "float32")
        return (logits, scores) if return_attention_scores else logits

    def attention_maps(self, token_ids):
        """The attention weights of every block: a list of `(B, num_heads, T, T)` arrays."""
        _, scores = self(ops.convert_to_tensor(token_ids), return_attention_scores=True)
        return [ops.convert_to_numpy(block_scores) for block_scores in scores]

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            max_length=self.max_length,
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            num_classes=self.num_classes,
            ff_dim=self.ff_dim,
            dropout=self.dropout,
            pad_id=self.pad_id,
            positional=self.positional,
            activation=self.activation,
        )
        return config


def masked_mean(x, mask):
    """Average `(B, T, C)` vectors over the positions where the `(B, T)` mask is True.

    Example:

    >>> from keras import ops
    >>> x = ops.convert_to_tensor([[[1.0], [3.0], [100.0]]])
    >>> ops.convert_to_numpy(masked_mean(x, ops.convert_to_tensor([[True, True, False]])))
    array([[2.]], dtype=float32)
    """
    weights = ops.cast(mask, x.dtype)[..., None]
    total = ops.sum(x * weights, axis=1)
    count = ops.maximum(ops.sum(weights, axis=1), 1.0)
    return total / count
