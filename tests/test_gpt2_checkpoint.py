"""GPT-2 checkpoints: keras_tx opens what `transformers` saves, and saves what it opens.

`transformers` is the independent implementation: its models are built with
random weights, saved with `save_pretrained`, loaded with `load_gpt2`, and the
logits and greedy continuations compared. The GPT-2-small test runs only
with KERAS_BACKEND=torch (the converter is backend-independent NumPy; the
small shapes cover the three backends).
"""

import json
import shutil

import keras
import numpy as np
import pytest
import torch
from hf_gpt2 import hf_logits, hf_model
from safetensors.numpy import load_file, save_file
from transformers import GPT2LMHeadModel

from keras_tx import GPT
from keras_tx_tools.gpt2.checkpoint import load_gpt2, save_gpt2

CONFIGS = {
    "gpt2": {},
    "exact-gelu": {"activation_function": "gelu"},
    "untied-narrow-mlp-upcast": {"tie_word_embeddings": False, "n_inner": 48, "reorder_and_upcast_attn": True},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A saved GPT-2 checkpoint folder and the model that saved it."""
    directory = tmp_path_factory.mktemp("gpt2")
    model = hf_model()
    model.save_pretrained(directory)
    return directory, model


def logits(model, ids):
    return keras.ops.convert_to_numpy(model(ids))


def token_ids(rng, vocab_size=97, shape=(2, 10)):
    return rng.integers(0, vocab_size, size=shape)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_logits_and_greedy_continuations_match_transformers(config, tmp_path, rng):
    reference = hf_model(**config)
    reference.save_pretrained(tmp_path)
    model = load_gpt2(tmp_path)
    ids = token_ids(rng)
    np.testing.assert_allclose(logits(model, ids), hf_logits(reference, ids), atol=1e-4, rtol=0)

    prompt = ids[:, :4]
    with torch.no_grad():
        expected = reference.generate(
            torch.as_tensor(prompt), attention_mask=torch.ones(prompt.shape, dtype=torch.long),
            max_new_tokens=12, do_sample=False, pad_token_id=0,
        ).numpy()
    np.testing.assert_array_equal(model.generate(prompt, max_new_tokens=12, temperature=0), expected)


def test_a_left_padded_batch_matches_transformers(checkpoint, rng):
    """Prompts of 3 and 6 tokens in one batch, as `transformers` pads and generates them."""
    directory, reference = checkpoint
    model = load_gpt2(directory)
    ids = token_ids(rng, shape=(2, 6))
    real = np.ones(ids.shape, bool)
    real[0, :3] = False
    ids[~real] = 0
    positions = np.maximum(real.cumsum(axis=1) - 1, 0)
    with torch.no_grad():
        expected_logits = reference(
            torch.as_tensor(ids), attention_mask=torch.as_tensor(real), position_ids=torch.as_tensor(positions)
        ).logits.numpy()
        expected = reference.generate(
            torch.as_tensor(ids), attention_mask=torch.as_tensor(real, dtype=torch.long),
            max_new_tokens=8, do_sample=False, pad_token_id=0,
        ).numpy()
    ours = keras.ops.convert_to_numpy(model(ids, padding_mask=real))
    np.testing.assert_allclose(ours[real], expected_logits[real], atol=1e-4, rtol=0)
    np.testing.assert_array_equal(model.generate(ids, max_new_tokens=8, temperature=0, padding_mask=real), expected)


def test_the_loaded_model_has_the_checkpoint_architecture(checkpoint):
    directory, reference = checkpoint
    model = load_gpt2(directory)
    assert (model.vocab_size, model.max_length, model.embed_dim) == (97, 32, 32)
    assert (model.num_heads, model.num_layers, model.ff_dim) == (4, 2, 128)
    assert model.activation == "gelu_approximate" and model.tie_weights
    assert model.count_params() == reference.num_parameters()


def test_bfloat16_loading_keeps_the_logits_within_bfloat16_rounding(checkpoint, rng):
    directory, reference = checkpoint
    model = load_gpt2(directory, dtype="bfloat16")
    assert all(weight.dtype == "bfloat16" for weight in model.weights)
    ids = token_ids(rng)
    expected = hf_logits(reference, ids)  # logits up to about 4 in size; bfloat16 keeps 8 significant bits
    np.testing.assert_allclose(logits(model, ids), expected, atol=0.15, rtol=0)


def test_pytorch_model_bin_loads_like_safetensors(checkpoint, tmp_path, rng):
    directory, reference = checkpoint
    shutil.copy(directory / "config.json", tmp_path)
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")  # with the tied lm_head.weight
    ids = token_ids(rng)
    np.testing.assert_array_equal(logits(load_gpt2(tmp_path), ids), logits(load_gpt2(directory), ids))


def test_sharded_safetensors_load(tmp_path, rng):
    reference = hf_model()
    reference.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    ids = token_ids(rng)
    np.testing.assert_allclose(logits(load_gpt2(tmp_path), ids), hf_logits(reference, ids), atol=1e-4, rtol=0)


@pytest.mark.parametrize("tie_weights", [True, False], ids=["tied", "untied"])
def test_saved_model_opens_in_transformers_with_the_same_logits(tie_weights, tmp_path, rng):
    model = GPT(
        vocab_size=61, max_length=24, embed_dim=24, num_heads=3, num_layers=2, ff_dim=40,
        tie_weights=tie_weights, activation="gelu_approximate",
    )
    ids = token_ids(rng, vocab_size=61)
    save_gpt2(model, tmp_path, end_of_text_id=60)
    reference = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    assert reference.config.tie_word_embeddings == tie_weights and reference.config.eos_token_id == 60
    np.testing.assert_allclose(hf_logits(reference, ids), logits(model, ids), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(logits(load_gpt2(tmp_path), ids), logits(model, ids))


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="GPT-2-small shape runs on the torch backend only")
def test_gpt2_small_shape_matches_transformers(tmp_path, rng):
    reference = hf_model(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, initializer_range=0.02)
    reference.save_pretrained(tmp_path)
    model = load_gpt2(tmp_path)
    assert model.count_params() == 124_439_808
    ids = token_ids(rng, vocab_size=50257, shape=(1, 8))
    np.testing.assert_allclose(logits(model, ids), hf_logits(reference, ids), atol=1e-4, rtol=0)


# Clear errors, naming the file and the key.


def edit_config(directory, **changes):
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def edit_weights(directory, edit):
    path = directory / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


@pytest.fixture
def copied(checkpoint, tmp_path):
    directory = tmp_path / "checkpoint"
    shutil.copytree(checkpoint[0], directory)
    return directory


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_type": "gpt_neo"}, r"config.json: model_type='gpt_neo' is not supported; only 'gpt2' is"),
        ({"activation_function": "relu"}, r"activation_function='relu' is not supported; use one of \['gelu', 'gelu_new'\]"),
        ({"scale_attn_by_inverse_layer_idx": True}, r"scale_attn_by_inverse_layer_idx=True is not supported"),
        ({"layer_norm_epsilon": 1e-6}, r"layer_norm_epsilon=1e-06 is not supported by keras_tx's GPT \(only 1e-05\)"),
        ({"add_cross_attention": True}, r"add_cross_attention=True is not supported"),
        ({"n_head": 5}, r"n_embd=32 is not divisible by n_head=5"),
    ],
)
def test_unsupported_configs_are_refused(copied, changes, message):
    edit_config(copied, **changes)
    with pytest.raises(ValueError, match=message):
        load_gpt2(copied)


def test_missing_files_are_named(copied):
    (copied / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"No weights in .*: expected model.safetensors"):
        load_gpt2(copied)
    (copied / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"No config.json in .*checkpoint: a GPT-2 checkpoint folder holds"):
        load_gpt2(copied)


def test_a_broken_config_is_named(copied):
    (copied / "config.json").write_text('{"model_type": "gpt2",')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON: Expecting property name"):
        load_gpt2(copied)


def test_a_shape_that_does_not_fit_the_config_names_the_key(copied):
    edit_config(copied, n_positions=64)
    with pytest.raises(ValueError, match=r"model.safetensors: 'wpe.weight' has shape \(32, 32\), but config.json implies \(64, 32\)"):
        load_gpt2(copied)


def test_missing_and_unexpected_weights_are_named(copied):
    edit_weights(copied, lambda tensors: tensors.pop("transformer.h.1.mlp.c_fc.bias"))
    with pytest.raises(ValueError, match=r"model.safetensors has no weight 'h.1.mlp.c_fc.bias', which config.json \(n_layer=2,"):
        load_gpt2(copied)
    edit_weights(copied, lambda tensors: tensors.update({"transformer.h.1.mlp.c_fc.bias": np.zeros(128, "float32"), "score.weight": np.zeros((2, 32), "float32")}))
    with pytest.raises(ValueError, match=r"holds weights that a GPT-2 language model does not have: \['score.weight'\]"):
        load_gpt2(copied)


def test_an_untied_head_under_a_tied_config_is_refused(copied):
    edit_weights(copied, lambda tensors: tensors.update({"lm_head.weight": np.ones((97, 32), "float32")}))
    with pytest.raises(ValueError, match=r"'lm_head.weight' differs from 'wte.weight', but config.json ties them"):
        load_gpt2(copied)


def test_a_git_lfs_pointer_is_recognised(copied):
    (copied / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 548105171\n")
    with pytest.raises(ValueError, match=r"model.safetensors is not a readable safetensors file .* Git LFS pointer"):
        load_gpt2(copied)


def test_sinusoidal_models_cannot_be_saved_as_gpt2(tmp_path):
    model = GPT(vocab_size=11, max_length=8, embed_dim=8, num_heads=2, num_layers=1, positional="sinusoidal")
    with pytest.raises(ValueError, match=r"GPT-2 learns its positions; this model has positional='sinusoidal'"):
        save_gpt2(model, tmp_path)
