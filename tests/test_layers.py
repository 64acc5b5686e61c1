"""Embedding, self-attention and transformer block against independent references."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_tx import MultiHeadSelfAttention, TokenAndPositionEmbedding, TransformerBlock, sinusoidal_position_encoding

import reference


def numpy(x):
    return ops.convert_to_numpy(x)


# --- positions -------------------------------------------------------------


def test_sinusoidal_table_matches_the_formula():
    length, dim = 7, 10
    table = numpy(sinusoidal_position_encoding(length, dim))
    p = np.arange(length)[:, None]
    i = np.arange(dim // 2)[None, :]
    angle = p / 10000 ** (2 * i / dim)
    np.testing.assert_allclose(table[:, 0::2], np.sin(angle), atol=1e-5)
    np.testing.assert_allclose(table[:, 1::2], np.cos(angle), atol=1e-5)
    np.testing.assert_allclose(numpy(sinusoidal_position_encoding(3, dim, start=4)), table[4:], atol=1e-5)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_embedding_adds_the_position_vector_to_the_token_vector(positional):
    layer = TokenAndPositionEmbedding(20, 8, 6, positional=positional)
    ids = np.array([[3, 3, 3, 5]])
    out = numpy(layer(ids))
    tokens = numpy(layer.token_embedding.embeddings)
    positions = (
        numpy(layer.position_embedding.embeddings)[:4]
        if positional == "learned"
        else numpy(sinusoidal_position_encoding(4, 6))
    )
    np.testing.assert_allclose(out[0], tokens[ids[0]] + positions, rtol=1e-6, atol=1e-6)
    # The same token at different positions gets different vectors.
    assert not np.allclose(out[0, 0], out[0, 1])
    # Starting later shifts the positions.
    np.testing.assert_allclose(numpy(layer(ids[:, 2:], start_index=2)), out[:, 2:], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(vocab_size=10, max_length=8, embed_dim=5, positional="sinusoidal"), "embed_dim"),
        (dict(vocab_size=10, max_length=8, embed_dim=4, positional="rotary"), "positional"),
        (dict(vocab_size=0, max_length=8, embed_dim=4), "vocab_size"),
        (dict(vocab_size=10, max_length=8.0, embed_dim=4), "`max_length` must be a positive integer"),
    ],
)
def test_embedding_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        TokenAndPositionEmbedding(**kwargs)


@pytest.mark.parametrize(
    "ids, argument",
    [
        (np.zeros((1, 9), "int32"), "max_length"),
        (np.zeros((1, 3), "float32"), "integers"),
        (np.zeros((3,), "int32"), "shape"),
        (np.array([[1, 10]]), r"\[0, 10\)"),
        (np.array([[-1, 2]]), r"\[0, 10\)"),
    ],
)
def test_embedding_rejects_bad_token_ids(ids, argument):
    layer = TokenAndPositionEmbedding(vocab_size=10, max_length=8, embed_dim=4)
    with pytest.raises(ValueError, match=argument):
        layer(ids)


# --- self-attention --------------------------------------------------------


@pytest.fixture
def inputs(rng):
    return rng.normal(size=(2, 6, 16)).astype("float32")


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_matches_an_independent_reference(inputs, causal):
    layer = MultiHeadSelfAttention(16, 4, causal=causal)
    out, weights = layer(inputs, return_attention_scores=True)
    mask = reference.causal(6) if causal else None
    expected, expected_weights = reference.multi_head_self_attention(inputs, layer, mask)
    np.testing.assert_allclose(numpy(out), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(numpy(weights), expected_weights, rtol=1e-4, atol=1e-6)


def test_fused_and_explicit_paths_agree(inputs):
    keep = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    for causal in (False, True):
        for mask in (None, keep):
            layer = MultiHeadSelfAttention(16, 4, causal=causal)
            explicit, _ = layer(inputs, padding_mask=mask, return_attention_scores=True)
            fused = layer(inputs, padding_mask=mask)
            np.testing.assert_allclose(numpy(fused), numpy(explicit), rtol=1e-5, atol=1e-5)


def test_fused_kernel_is_used_only_when_the_weights_are_not_needed(inputs, monkeypatch):
    calls = []
    original = ops.dot_product_attention
    monkeypatch.setattr(ops, "dot_product_attention", lambda *a, **k: calls.append(1) or original(*a, **k))
    layer = MultiHeadSelfAttention(16, 4, dropout=0.5, causal=True)
    layer(inputs)
    layer(inputs, training=False)
    assert len(calls) == 2
    layer(inputs, return_attention_scores=True)
    layer(inputs, training=True)  # dropout on the weights needs them explicitly
    assert len(calls) == 2


def test_causal_attention_ignores_the_future(inputs):
    layer = MultiHeadSelfAttention(16, 4, causal=True)
    before = numpy(layer(inputs))
    changed = inputs.copy()
    changed[:, 4] += 10.0
    after = numpy(layer(changed))
    np.testing.assert_allclose(after[:, :4], before[:, :4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(after[:, 4:], before[:, 4:])


@pytest.mark.parametrize("return_attention_scores", [False, True])
def test_padding_never_influences_real_tokens(inputs, return_attention_scores):
    layer = MultiHeadSelfAttention(16, 4)
    keep = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]])

    def run(x):
        out = layer(x, padding_mask=keep, return_attention_scores=return_attention_scores)
        return numpy(out[0] if return_attention_scores else out)

    before = run(inputs)
    changed = np.where(keep[..., None].astype(bool), inputs, 99.0).astype("float32")
    after = run(changed)
    real = keep.astype(bool)
    np.testing.assert_allclose(after[real], before[real], rtol=1e-5, atol=1e-5)


def test_all_padding_sequence_gives_finite_output(inputs):
    layer = MultiHeadSelfAttention(16, 4, causal=True)
    keep = np.zeros((2, 6), "int32")
    for scores in (False, True):
        out = layer(inputs, padding_mask=keep, return_attention_scores=scores)
        assert np.all(np.isfinite(numpy(out[0] if scores else out)))


def test_attention_weights_have_one_map_per_head_and_rows_sum_to_one(inputs):
    _, weights = MultiHeadSelfAttention(16, 4, causal=True)(inputs, return_attention_scores=True)
    weights = numpy(weights)
    assert weights.shape == (2, 4, 6, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(weights, k=1) == 0.0)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(embed_dim=10, num_heads=3), "divisible"),
        (dict(embed_dim=8, num_heads=0), "num_heads"),
        (dict(embed_dim=8, num_heads=True), "`num_heads` must be a positive integer, got num_heads=True"),
        (dict(embed_dim=8, num_heads=2, dropout=1.5), "dropout"),
    ],
)
def test_self_attention_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        MultiHeadSelfAttention(**kwargs)


# --- transformer block -----------------------------------------------------


@pytest.mark.parametrize(
    "norm_first, activation", [(True, "gelu"), (False, "gelu"), (True, "gelu_approximate")]
)
def test_block_matches_an_independent_reference(inputs, norm_first, activation):
    block = TransformerBlock(16, 4, 32, causal=True, norm_first=norm_first, activation=activation)
    block.build(inputs.shape)
    # Non-trivial LayerNorm parameters so that the norm placement matters.
    for norm in (block.norm1, block.norm2):
        norm.set_weights([np.linspace(0.5, 1.5, 16, dtype="float32"), np.linspace(-0.1, 0.1, 16, dtype="float32")])
    expected = reference.transformer_block(inputs, block, reference.causal(6))
    np.testing.assert_allclose(numpy(block(inputs)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("activation", ["gelu", "gelu_approximate"])
def test_block_activation_is_the_documented_formula(rng, activation):
    """With silent attention and identity dense layers, the block adds activation(norm2(x)) to x."""
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    block = TransformerBlock(8, 2, 8, activation=activation)
    block.build(x.shape)
    zeros, identity = np.zeros(8, "float32"), np.eye(8, dtype="float32")
    block.attention.output_dense.set_weights([0 * identity, zeros])
    block.norm2.set_weights([np.full(8, 3.0, "float32"), zeros])  # inputs of the GELU over about [-6, 6]
    block.ffn_in.set_weights([identity, zeros])
    block.ffn_out.set_weights([identity, zeros])
    hidden = reference.layer_norm(x, block.norm2)
    added = numpy(block(x)) - x
    np.testing.assert_allclose(added, reference.ACTIVATIONS[activation](hidden), rtol=1e-5, atol=2e-6)
    other = "gelu" if activation == "gelu_approximate" else "gelu_approximate"
    assert np.abs(added - reference.ACTIVATIONS[other](hidden)).max() > 1e-4


def test_block_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match=r"`activation` must be one of \('gelu', 'gelu_approximate'\)"):
        TransformerBlock(8, 2, 16, activation="relu")


def test_block_returns_weights_when_asked(inputs):
    out, weights = TransformerBlock(16, 4, 32)(inputs, return_attention_scores=True)
    assert tuple(out.shape) == (2, 6, 16)
    assert tuple(weights.shape) == (2, 4, 6, 6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MultiHeadSelfAttention(16, 4, causal=True),
        lambda: TransformerBlock(16, 4, 32, causal=True),
        lambda: TransformerBlock(16, 4, 32, causal=True, norm_first=False),
    ],
)
def test_decoding_with_a_cache_equals_the_causal_pass(inputs, make):
    """A prompt, then one token at a time: the same outputs as one pass over the whole sequence."""
    layer = make()
    full = numpy(layer(inputs))
    cache = ops.zeros((2, 2, 8, 4, 4))  # room for 8 positions; the sequence has 6
    output, cache = layer.decode(ops.convert_to_tensor(inputs[:, :4]), cache, cache_index=0)
    outputs = [numpy(output)]
    for position in (4, 5):
        output, cache = layer.decode(ops.convert_to_tensor(inputs[:, position : position + 1]), cache, position)
        outputs.append(numpy(output))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, rtol=1e-5, atol=1e-5)
    assert np.all(numpy(cache)[:, :, 6:] == 0)  # the slots after the last token are untouched


# --- the same checks Keras' own layers pass ---------------------------------


LAYERS = [
    (lambda: TokenAndPositionEmbedding(20, 8, 6, positional="sinusoidal"), np.array([[1, 2, 3]])),
    (lambda: TokenAndPositionEmbedding(20, 8, 6), np.array([[1, 2, 3]])),
    (lambda: MultiHeadSelfAttention(16, 4, dropout=0.1, causal=True), np.ones((2, 5, 16), "float32")),
    (lambda: TransformerBlock(16, 4, 32, dropout=0.1, norm_first=False), np.ones((2, 5, 16), "float32")),
    (lambda: TransformerBlock(16, 4, 32, activation="gelu_approximate"), np.ones((2, 5, 16), "float32")),
]


@pytest.mark.parametrize("make_layer, x", LAYERS)
def test_config_round_trip_restores_the_same_layer(make_layer, x):
    layer = make_layer()
    out = numpy(layer(x))
    clone = layer.__class__.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(numpy(clone(x)), out, rtol=1e-6)
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("make_layer, x", LAYERS)
def test_symbolic_call_gives_the_eager_shape(make_layer, x):
    layer = make_layer()
    symbolic = layer(keras.KerasTensor((None, *x.shape[1:]), dtype=str(x.dtype)))
    assert tuple(symbolic.shape)[1:] == tuple(layer(x).shape)[1:]
