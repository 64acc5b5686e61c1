import keras
import numpy as np
import pytest
from keras import ops

from keras_tx import attention_weights, causal_mask, scaled_dot_product_attention

from reference import attention


@pytest.fixture
def qkv(rng):
    return (rng.normal(size=(2, 3, 5, 8)).astype("float32") for _ in range(3))


def test_matches_an_independent_reference(qkv):
    q, k, v = qkv
    output, weights = scaled_dot_product_attention(q, k, v)
    expected_output, expected_weights = attention(q, k, v)
    np.testing.assert_allclose(ops.convert_to_numpy(weights), expected_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(output), expected_output, rtol=1e-5, atol=1e-5)


def test_masked_keys_get_exactly_zero_weight_and_rows_sum_to_one(qkv):
    q, k, v = qkv
    mask = ops.convert_to_numpy(causal_mask(5))
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    weights = ops.convert_to_numpy(weights)
    assert np.all(weights[..., ~mask] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(output), attention(q, k, v, mask)[0], rtol=1e-5, atol=1e-5)


def test_scores_are_scaled_by_sqrt_of_the_key_size():
    q = np.array([[[4.0, 0.0, 0.0, 0.0]]], "float32")
    k = np.array([[[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]], "float32")
    weights = ops.convert_to_numpy(attention_weights(q, k))
    # Scores 4/sqrt(4)=2 and 0: softmax gives e^2 / (e^2 + 1).
    np.testing.assert_allclose(weights[0, 0, 0], np.exp(2) / (np.exp(2) + 1), rtol=1e-6)


def test_fully_masked_row_is_finite(qkv):
    q, k, v = qkv
    mask = np.ones((5, 5), bool)
    mask[2] = False
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    assert np.all(np.isfinite(ops.convert_to_numpy(output)))
    assert np.all(np.isfinite(ops.convert_to_numpy(weights)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_scores_with_a_mask_stay_finite_and_softmax_runs_in_float32(qkv, dtype):
    q, k, v = (ops.cast(t * 30, dtype) for t in qkv)  # large scores
    output, weights = scaled_dot_product_attention(q, k, v, causal_mask(5))
    assert keras.backend.standardize_dtype(weights.dtype) == "float32"
    assert np.all(np.isfinite(ops.convert_to_numpy(ops.cast(output, "float32"))))
    np.testing.assert_allclose(ops.convert_to_numpy(weights).sum(-1), 1.0, rtol=1e-5)
