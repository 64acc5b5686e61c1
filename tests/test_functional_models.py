"""The layers compose into functional Keras models that train on every backend.

Positions are built inside `TokenAndPositionEmbedding`, never held as a
constant tensor by the functional graph (which breaks the torch backend's
backward pass).
"""

import keras
import numpy as np

from keras_tx import MultiHeadSelfAttention, TokenAndPositionEmbedding, TransformerBlock


def test_functional_language_model_trains(rng):
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = TokenAndPositionEmbedding(vocab_size=20, max_length=16, embed_dim=16)(inputs)
    x = TransformerBlock(16, 2, 32, causal=True)(x)
    outputs = keras.layers.Dense(20)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = (rng.integers(0, 20, size=(64, 1)) + np.arange(11)) % 20
    history = model.fit(data[:, :-1], data[:, 1:], batch_size=16, epochs=5, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_functional_encoder_with_a_padding_mask_input_trains(rng):
    ids = keras.Input(shape=(8,), dtype="int32")
    keep = keras.Input(shape=(8,), dtype="bool")
    x = TokenAndPositionEmbedding(vocab_size=20, max_length=8, embed_dim=16)(ids)
    x = MultiHeadSelfAttention(16, 2)(x, padding_mask=keep)
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(x))
    model = keras.Model([ids, keep], outputs)
    model.compile(optimizer="adam", loss="mse")
    tokens = rng.integers(1, 20, size=(32, 8)).astype("int32")
    history = model.fit([tokens, tokens > 3], rng.normal(size=(32, 1)), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
