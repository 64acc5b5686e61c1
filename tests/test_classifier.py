import keras
import numpy as np
import pytest
from keras import ops

from keras_tx import TransformerClassifier
from keras_tx.classifier import masked_mean


def classifier(**kwargs):
    config = dict(vocab_size=30, max_length=12, embed_dim=16, num_heads=2, num_layers=2, num_classes=2, dropout=0.0)
    config.update(kwargs)
    return TransformerClassifier(**config)


def test_padding_does_not_change_the_prediction(rng):
    model = classifier()
    ids = rng.integers(1, 30, size=(2, 6)).astype("int32")
    short = ops.convert_to_numpy(model(ids))
    padded = np.concatenate([ids, np.zeros((2, 4), "int32")], axis=1)
    np.testing.assert_allclose(ops.convert_to_numpy(model(padded)), short, rtol=1e-5, atol=1e-5)


def test_every_real_token_sees_the_whole_sequence(rng):
    """An encoder is not causal: changing the last token changes the attention of the first."""
    model = classifier()
    ids = rng.integers(1, 30, size=(1, 6)).astype("int32")
    changed = ids.copy()
    changed[0, -1] = changed[0, -1] % 29 + 1
    before, after = model.attention_maps(ids)[0], model.attention_maps(changed)[0]
    assert not np.allclose(before[0, :, 0], after[0, :, 0])
    assert np.all(before[0, :, :, :] > 0)


def test_attention_never_lands_on_padding():
    maps = classifier().attention_maps(np.array([[5, 6, 7, 0, 0]]))
    for weights in maps:
        assert np.all(weights[0, :, :3, 3:] == 0.0)


def test_masked_mean_ignores_masked_positions():
    x = ops.convert_to_tensor(np.array([[[1.0, 2.0], [3.0, 4.0], [50.0, 60.0]]], "float32"))
    np.testing.assert_allclose(ops.convert_to_numpy(masked_mean(x, np.array([[1, 1, 0]]))), [[2.0, 3.0]])


def test_learns_a_separable_task(rng):
    # Class 1 iff token 7 occurs in the sequence; sequences are right-padded.
    ids = rng.integers(8, 30, size=(128, 10)).astype("int32")
    labels = rng.integers(0, 2, size=128)
    ids[labels == 1, rng.integers(0, 5, size=(labels == 1).sum())] = 7
    lengths = rng.integers(5, 11, size=128)
    ids[np.arange(10)[None, :] >= lengths[:, None]] = 0
    model = classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(ids, labels, batch_size=32, epochs=15, verbose=0)
    assert history.history["accuracy"][-1] > 0.9


@pytest.mark.parametrize(
    "kwargs, argument",
    [(dict(num_classes=0), "num_classes"), (dict(num_layers=0), "num_layers"), (dict(activation="relu"), "activation")],
)
def test_bad_configuration_is_rejected(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        classifier(**kwargs)
