"""Prompts of different lengths in one batch: left padding and a padding mask.

Each row of a padded batch must behave exactly as if it were alone: the same
logits at its real tokens, and the same generated tokens, with and without
the key/value cache.
"""

import numpy as np
import pytest
from keras import ops

from keras_tx import GPT

PAD = 0
LENGTHS = (2, 5, 7)  # real tokens per prompt; the batch is padded on the left to 7


@pytest.fixture(scope="module")
def model():
    return GPT(vocab_size=37, max_length=24, embed_dim=32, num_heads=4, num_layers=2)


@pytest.fixture(scope="module")
def prompts():
    rng = np.random.default_rng(7)
    return [rng.integers(1, 37, size=length).astype("int32") for length in LENGTHS]


def left_pad(prompts):
    width = max(len(p) for p in prompts)
    token_ids = np.full((len(prompts), width), PAD, "int32")
    padding_mask = np.zeros((len(prompts), width), bool)
    for row, prompt in enumerate(prompts):
        token_ids[row, width - len(prompt) :] = prompt
        padding_mask[row, width - len(prompt) :] = True
    return token_ids, padding_mask


def test_each_row_gets_the_logits_it_gets_alone(model, prompts):
    token_ids, padding_mask = left_pad(prompts)
    batched = ops.convert_to_numpy(model(token_ids, padding_mask=padding_mask))
    for row, prompt in enumerate(prompts):
        alone = ops.convert_to_numpy(model(prompt[None]))[0]
        np.testing.assert_allclose(batched[row, -len(prompt) :], alone, rtol=1e-5, atol=1e-5)


def test_padded_positions_stay_finite(model, prompts):
    token_ids, padding_mask = left_pad(prompts)
    logits, weights = model(token_ids, padding_mask=padding_mask, return_attention_scores=True)
    assert np.isfinite(ops.convert_to_numpy(logits)).all()
    for block_weights in weights:
        block_weights = ops.convert_to_numpy(block_weights)
        assert np.isfinite(block_weights).all()
        # No real query ever attends to a padded key.
        real_queries = block_weights[0, :, -LENGTHS[0] :, : -LENGTHS[0]]
        np.testing.assert_array_equal(real_queries, 0.0)


def test_a_mask_of_ones_changes_nothing(model, prompts):
    token_ids = np.stack([p[:2] for p in prompts])
    plain = ops.convert_to_numpy(model(token_ids))
    masked = ops.convert_to_numpy(model(token_ids, padding_mask=np.ones(token_ids.shape, bool)))
    np.testing.assert_allclose(masked, plain, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("use_cache", [True, False], ids=["cached", "uncached"])
def test_each_row_generates_the_tokens_it_generates_alone(model, prompts, use_cache):
    token_ids, padding_mask = left_pad(prompts)
    batched = model.generate(
        token_ids, max_new_tokens=6, temperature=0, padding_mask=padding_mask, use_cache=use_cache
    )
    assert batched.shape == (len(prompts), token_ids.shape[1] + 6)
    np.testing.assert_array_equal(batched[:, : token_ids.shape[1]], token_ids)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], max_new_tokens=6, temperature=0, use_cache=use_cache)
        np.testing.assert_array_equal(batched[row, token_ids.shape[1] :], alone[0, len(prompt) :])


def test_padding_mask_must_match_the_tokens_and_pad_on_the_left(model, prompts):
    token_ids, padding_mask = left_pad(prompts)
    with pytest.raises(ValueError, match="padding_mask"):
        model(token_ids, padding_mask=padding_mask[:, 1:])
    with pytest.raises(ValueError, match="padding_mask"):
        model.generate(token_ids, max_new_tokens=2, padding_mask=padding_mask[:, 1:])
    with pytest.raises(ValueError, match="left"):
        model.generate(token_ids, max_new_tokens=2, padding_mask=padding_mask[:, ::-1])
    with pytest.raises(ValueError, match="padding_mask"):
        model.generate(token_ids, max_new_tokens=2, padding_mask=np.zeros_like(padding_mask))
