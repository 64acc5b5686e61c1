"""The same GPT assembled from stock Keras layers: what Keras users write today.

`keras.layers.MultiHeadAttention` with `use_causal_mask=True`,
`LayerNormalization`, `Dense` and `Embedding`, in the layout and with the
parameter count of `keras_tx.GPT` (pre-norm blocks, learned positions, output
projection tied to the token embedding). It runs on every Keras backend.

Example:

>>> import numpy as np
>>> model = StockKerasGPT(vocab_size=65, max_length=64, embed_dim=128,
...                       num_heads=4, num_layers=4)
>>> model(np.zeros((2, 64), "int32")).shape
(2, 64, 65)
"""

import keras
from keras import layers, ops


class StockBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, **kwargs):
        super().__init__(**kwargs)
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5)
        self.attention = layers.MultiHeadAttention(num_heads, embed_dim // num_heads)
        self.feed_forward_norm = layers.LayerNormalization(epsilon=1e-5)
        self.feed_forward = keras.Sequential(
            [layers.Dense(ff_dim, activation="gelu"), layers.Dense(embed_dim)]
        )

    def call(self, x):
        h = self.attention_norm(x)
        x = x + self.attention(h, h, use_causal_mask=True)
        return x + self.feed_forward(self.feed_forward_norm(x))


class StockKerasGPT(keras.Model):
    """Decoder-only transformer: token ids (B, T) -> next-token logits (B, T, V)."""

    def __init__(self, vocab_size, max_length, embed_dim, num_heads, num_layers,
                 ff_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = layers.Embedding(vocab_size, embed_dim)
        self.position_embedding = layers.Embedding(max_length, embed_dim)
        self.blocks = [
            StockBlock(embed_dim, num_heads, ff_dim or 4 * embed_dim)
            for _ in range(num_layers)
        ]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5)

    def call(self, token_ids):
        positions = ops.arange(ops.shape(token_ids)[1])
        x = self.token_embedding(token_ids) + self.position_embedding(positions)
        for block in self.blocks:
            x = block(x)
        x = self.final_norm(x)
        return ops.matmul(x, ops.transpose(self.token_embedding.embeddings))
