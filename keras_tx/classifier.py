"""A transformer encoder that classifies whole sequences (e.g. IMDB reviews).

Unlike GPT, an encoder lets every token see the whole sequence (no causal
mask) -- but never the padding that fills short sequences up to the batch
length. The token vectors of the last block are averaged over the real tokens
into one vector per sequence, and a dense layer maps it to class logits.
"""

import keras
from keras import ops

from keras_tx.masking import padding_mask
from keras_tx.transformer import TransformerStack
from keras_tx.validation import check_positive_integers


@keras.saving.register_keras_serializable(package="keras_tx")
class TransformerClassifier(TransformerStack):
    """Encoder + masked mean pooling + dense head: `(B, T)` ids -> `(B, num_classes)` logits.

    Args:
        vocab_size: as for `GPT`, and so are `max_length`, `embed_dim`, `num_heads` and `num_layers`.
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
        self, vocab_size, max_length, embed_dim, num_heads, num_layers,
        num_classes,
        ff_dim=None,
        dropout=0.1,
        pad_id=0,
        positional="learned",
        activation="gelu",
        **kwargs,
    ):
        check_positive_integers(num_layers=num_layers, num_classes=num_classes)
        super().__init__(
            vocab_size, max_length, embed_dim, num_heads, num_layers,
            ff_dim=ff_dim, dropout=dropout, positional=positional, activation=activation, **kwargs
        )
        self.num_classes = num_classes
        self.pad_id = pad_id
        self.head_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.head = keras.layers.Dense(num_classes, dtype=self.dtype_policy, name="head")

    def build(self, input_shape):
        super().build(input_shape)
        self.head.build((input_shape[0], self.embed_dim))

    def call(self, token_ids, training=None, return_attention_scores=False):
        """Class logits `(B, num_classes)`; with `return_attention_scores`, also
        one `(B, num_heads, T, T)` weight tensor per block."""
        real_tokens = padding_mask(token_ids, self.pad_id)
        x, weights = self.transform(
            self.embedding(token_ids),
            padding_mask=real_tokens,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        pooled = masked_mean(x, real_tokens)
        logits = ops.cast(self.head(self.head_dropout(pooled, training=training)), "float32")
        return (logits, weights) if return_attention_scores else logits

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, pad_id=self.pad_id)
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
