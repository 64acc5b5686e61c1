"""Saved models restore identical outputs, on this backend and on the other two."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from keras_tx import GPT, TransformerClassifier

BACKENDS = ("tensorflow", "torch", "jax")


@pytest.fixture
def ids(rng):
    return rng.integers(1, 40, size=(2, 9)).astype("int32")


def models():
    return {
        "gpt": GPT(vocab_size=40, max_length=16, embed_dim=16, num_heads=2, num_layers=2, positional="sinusoidal"),
        "gpt_untied": GPT(vocab_size=40, max_length=16, embed_dim=16, num_heads=2, num_layers=1, tie_weights=False),
        "gpt2_gelu": GPT(
            vocab_size=40, max_length=16, embed_dim=16, num_heads=2, num_layers=1, activation="gelu_approximate"
        ),
        "classifier": TransformerClassifier(
            vocab_size=40, max_length=16, embed_dim=16, num_heads=2, num_layers=1, num_classes=3
        ),
        "classifier_gelu_approximate": TransformerClassifier(
            vocab_size=40, max_length=16, embed_dim=16, num_heads=2, num_layers=1, num_classes=3,
            activation="gelu_approximate",
        ),
    }


@pytest.mark.parametrize("name", list(models()))
def test_save_and_load_restore_identical_outputs(tmp_path, ids, name):
    model = models()[name]
    expected = ops.convert_to_numpy(model(ids))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()
    assert [block.activation for block in restored.blocks] == [block.activation for block in model.blocks]
    np.testing.assert_allclose(ops.convert_to_numpy(restored(ids)), expected, rtol=1e-6, atol=1e-6)


def test_trained_model_loads_and_keeps_training(tmp_path, ids):
    model = models()["gpt"]
    model.compile(optimizer="adamw", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(ids[:, :-1], ids[:, 1:], epochs=1, verbose=0)
    model.save(tmp_path / "trained.keras")
    restored = keras.saving.load_model(tmp_path / "trained.keras")
    np.testing.assert_array_equal(
        restored.generate(ids[:, :3], 5, temperature=0), model.generate(ids[:, :3], 5, temperature=0)
    )
    restored.fit(ids[:, :-1], ids[:, 1:], epochs=1, verbose=0)


LOAD_AND_COMPARE = textwrap.dedent(
    """
    import sys, keras, numpy as np
    import keras_tx  # registers the layers
    model = keras.saving.load_model(sys.argv[1])
    data = np.load(sys.argv[2])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(data["ids"])), data["logits"], rtol=1e-4, atol=1e-5)
    print("loaded on", keras.backend.backend())
    """
)


@pytest.mark.parametrize("other_backend", [b for b in BACKENDS if b != keras.backend.backend()])
def test_model_saved_here_loads_under_another_backend(tmp_path, ids, backend_env, other_backend):
    model = models()["gpt"]
    np.savez(tmp_path / "expected.npz", ids=ids, logits=ops.convert_to_numpy(model(ids)))
    model.save(tmp_path / "model.keras")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_COMPARE, str(tmp_path / "model.keras"), str(tmp_path / "expected.npz")],
        env={**backend_env, "KERAS_BACKEND": other_backend},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loaded on {other_backend}" in result.stdout
