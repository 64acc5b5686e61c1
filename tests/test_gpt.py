import keras
import numpy as np
import pytest
from keras import ops

from keras_tx import GPT


def small_gpt(**kwargs):
    config = dict(vocab_size=23, max_length=24, embed_dim=32, num_heads=4, num_layers=2)
    config.update(kwargs)
    return GPT(**config)


@pytest.fixture
def ids(rng):
    return rng.integers(0, 23, size=(3, 10)).astype("int32")


def test_logits_shape_and_dtype(ids):
    logits = small_gpt()(ids)
    assert tuple(logits.shape) == (3, 10, 23)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


@pytest.mark.parametrize("position", [0, 4, 9])
def test_changing_a_token_never_changes_earlier_logits(ids, position):
    model = small_gpt()
    before = ops.convert_to_numpy(model(ids))
    changed = ids.copy()
    changed[:, position] = (changed[:, position] + 1) % 23
    after = ops.convert_to_numpy(model(changed))
    np.testing.assert_allclose(after[:, :position], before[:, :position], rtol=1e-5, atol=1e-5)
    assert not np.allclose(after[:, position], before[:, position])


def test_parameter_count_follows_the_formula():
    vocab, length, width, layers, ff = 23, 24, 32, 2, 128
    per_block = 4 * (width * width + width) + 2 * 2 * width + (width * ff + ff) + (ff * width + width)
    tied = vocab * width + length * width + layers * per_block + 2 * width
    model = small_gpt()
    model.build((None, None))
    assert model.count_params() == tied
    untied = small_gpt(tie_weights=False)
    untied.build((None, None))
    assert untied.count_params() == tied + vocab * width


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(embed_dim=30, num_heads=4), "divisible"),
        (dict(embed_dim=31, num_heads=1, positional="sinusoidal"), "embed_dim"),
        (dict(num_layers=0), "num_layers"),
        (dict(activation="gelu_new"), r"`activation` must be one of \('gelu', 'gelu_approximate'\)"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        small_gpt(**kwargs)


def test_activation_reaches_every_block_and_changes_the_logits(ids):
    exact = small_gpt()
    approximate = small_gpt(activation="gelu_approximate")
    exact.build(ids.shape)
    approximate.build(ids.shape)
    approximate.set_weights(exact.get_weights())
    assert [block.activation for block in approximate.blocks] == ["gelu_approximate"] * 2
    difference = np.abs(ops.convert_to_numpy(exact(ids)) - ops.convert_to_numpy(approximate(ids))).max()
    assert 0 < difference < 1e-2


def test_too_long_input_is_rejected():
    with pytest.raises(ValueError, match="max_length"):
        small_gpt()(np.zeros((1, 25), "int32"))


def test_fit_trains_on_every_backend(rng):
    # A deterministic next-token rule: every token is followed by token + 1.
    starts = rng.integers(0, 23, size=(64, 1))
    data = (starts + np.arange(13)) % 23
    x, y = data[:, :-1], data[:, 1:]
    model = small_gpt()
    model.compile(optimizer=keras.optimizers.AdamW(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]


def test_dropout_is_active_only_in_training(ids):
    model = small_gpt(dropout=0.5)
    np.testing.assert_allclose(ops.convert_to_numpy(model(ids)), ops.convert_to_numpy(model(ids)))
    assert not np.allclose(ops.convert_to_numpy(model(ids, training=True)), ops.convert_to_numpy(model(ids)))


def test_attention_maps_are_causal_per_layer_and_head(ids):
    maps = small_gpt().attention_maps(ids)
    assert len(maps) == 2
    for weights in maps:
        assert weights.shape == (3, 4, 10, 10)
        assert np.all(np.triu(weights, k=1) == 0.0)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_forward_and_training(policy, rng):
    if policy == "mixed_float16" and keras.backend.backend() == "jax":
        pytest.skip("JAX on CPU cannot differentiate float16 dot products with float32 accumulation")
    keras.mixed_precision.set_dtype_policy(policy)
    model = small_gpt()
    ids = rng.integers(0, 23, size=(4, 12)).astype("int32")
    logits = model(ids)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.all(np.isfinite(ops.convert_to_numpy(logits)))
    maps = model.attention_maps(ids)
    assert maps[0].dtype == np.float32
    np.testing.assert_allclose(maps[0].sum(-1), 1.0, rtol=1e-3)
    model.compile(optimizer="adamw", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ids[:, :-1], ids[:, 1:], epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    generated = model.generate(ids[:1, :4], max_new_tokens=3, temperature=0)
    assert generated.shape == (1, 7)
