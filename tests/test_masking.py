import numpy as np
import pytest
from keras import ops

from keras_tx import apply_mask, attention_mask, causal_mask, masked_fill_value, padding_mask


def test_causal_mask_allows_keys_up_to_the_query():
    mask = ops.convert_to_numpy(causal_mask(5))
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, np.tril(np.ones((5, 5), bool)))


def test_causal_mask_with_offset_is_the_bottom_rows_of_the_full_mask():
    # Decoding with a cache: 2 new queries after 3 cached tokens.
    np.testing.assert_array_equal(
        ops.convert_to_numpy(causal_mask(2, key_length=5, offset=3)),
        np.tril(np.ones((5, 5), bool))[3:],
    )


def test_padding_mask_marks_real_tokens():
    np.testing.assert_array_equal(
        ops.convert_to_numpy(padding_mask(np.array([[4, 0, 9], [0, 0, 1]]))),
        [[True, False, True], [False, False, True]],
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(padding_mask(np.array([[7, 3]]), pad_id=7)), [[False, True]])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_fill_value_is_finite_and_hides_the_key_in_every_dtype(dtype):
    fill = masked_fill_value(dtype)
    assert np.isfinite(ops.convert_to_numpy(ops.cast(ops.cast(ops.convert_to_tensor(fill), dtype), "float32")))
    scores = ops.cast(ops.convert_to_tensor([[3.0, 1.0, 2.0]]), dtype)
    masked = apply_mask(scores, ops.convert_to_tensor([[True, False, True]]))
    weights = ops.convert_to_numpy(ops.cast(ops.softmax(ops.cast(masked, "float32")), "float32"))
    assert np.all(np.isfinite(weights))
    assert weights[0, 1] == 0.0
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)


def test_fully_masked_row_gives_uniform_weights_not_nan():
    scores = ops.convert_to_tensor(np.array([[1.0, 2.0], [5.0, -3.0]], "float32"))
    mask = ops.convert_to_tensor([[True, True], [False, False]])
    weights = ops.convert_to_numpy(ops.softmax(apply_mask(scores, mask)))
    np.testing.assert_allclose(weights[1], [0.5, 0.5])


def test_attention_mask_combines_causal_and_padding_and_never_empties_a_row():
    keep = np.array([[False, True, True, False]])  # left and right padding
    mask = ops.convert_to_numpy(attention_mask(4, 4, causal=True, key_padding_mask=keep))
    assert mask.shape == (1, 1, 4, 4)
    causal = np.tril(np.ones((4, 4), bool))
    # Real queries see exactly the real, non-future keys.
    for query in (1, 2):
        np.testing.assert_array_equal(mask[0, 0, query], causal[query] & keep[0])
    # Padding queries keep at least their own position.
    assert mask[0, 0, 0].tolist() == [True, False, False, False]
    assert mask.any(axis=-1).all()


def test_attention_mask_is_none_when_nothing_is_masked():
    assert attention_mask(3, 3) is None
