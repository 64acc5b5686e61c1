"""Grading of exercises/positional_embedding.py (20 points)."""

import keras
import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, check_dtype, check_shape, is_close, tensor, to_numpy
from grader.feedback import Feedback
from grader.layout import assign_weights, leaf_layers, pack_weights, random_weights, unpack_weights
from grader.reference import check_matches, draw_distinct


def formula_table(length, dim, exponent=2, interleaved=True, sine_first=True):
    """The sinusoidal table of the exercise's formula, and its classic misreadings."""
    positions = np.arange(length)[:, None]
    pair = np.arange((dim + 1) // 2)[None, :]  # the i of column pair (2i, 2i + 1)
    angles = positions / 10000 ** (exponent * pair / dim)
    first, second = (np.sin(angles), np.cos(angles)) if sine_first else (np.cos(angles), np.sin(angles))
    if interleaved:
        return np.stack([first, second], axis=-1).reshape(length, -1)[:, :dim]
    return np.concatenate([first, second], axis=-1)[:, :dim]


MISREADINGS = [
    (Feedback(cause="sine and cosine are swapped", fix="sin goes in the even columns 2i, cos in the odd columns 2i+1"),
     {"sine_first": False}),
    (Feedback(cause="the exponent uses i where the formula has 2i",
              fix="10000 ** (2i / dim), with 2i the even column index"), {"exponent": 1}),
    (Feedback(cause="sines and cosines are concatenated (all sines, then all cosines)",
              fix="the formula interleaves them: sin in column 2i, cos in column 2i+1"), {"interleaved": False}),
]


def sinusoid_hint(table, length, dim):
    for hint, misreading in MISREADINGS:
        if is_close(table, formula_table(length, dim, **misreading)):
            return hint
    return None


def draw_sizes(rng, module):
    length, half_dim = draw_distinct(rng, (5, 40), (2, 17))
    while length == 2 * half_dim:
        length += 1
    return {"length": np.asarray(length), "dim": np.asarray(2 * half_dim)}


def run_sinusoid(module, inputs):
    table = module.sinusoidal_position_encoding(int(inputs["length"]), int(inputs["dim"]))
    return {"table": to_numpy(table, "sinusoidal_position_encoding")}


@pytest.mark.points(3)
def test_sinusoidal_shape_and_dtype(student, rngs):
    for rng in rngs:
        sizes = draw_sizes(rng, None)
        length, dim = int(sizes["length"]), int(sizes["dim"])
        table = student.sinusoidal_position_encoding(length, dim)
        if not keras.ops.is_tensor(table):
            raise GradingFailure(Feedback(
                f"sinusoidal_position_encoding returned a {type(table).__name__}, expected a tensor",
                fix="keras.ops functions return one; keras.ops.convert_to_tensor makes one"))
        check_shape(to_numpy(table, "sinusoidal_position_encoding"), (length, dim),
                    f"sinusoidal_position_encoding({length}, {dim})")
        check_dtype(table, "float32", "the sinusoidal table")


@pytest.mark.points(5)
def test_sinusoidal_follows_the_formula(student):
    length, dim = 50, 16  # wide and long enough to tell every misreading of the formula apart
    table = to_numpy(student.sinusoidal_position_encoding(length, dim), "sinusoidal_position_encoding")
    check_close(table, formula_table(length, dim), f"sinusoidal_position_encoding({length}, {dim})",
                hint=lambda: sinusoid_hint(table, length, dim))


@pytest.mark.points(4)
def test_sinusoidal_matches_reference(student, reference):
    for inputs, expected in reference("sinusoid", draw_sizes, run_sinusoid):
        length, dim = int(inputs["length"]), int(inputs["dim"])
        table = run_sinusoid(student, inputs)["table"]
        check_matches(table, expected["table"], f"sinusoidal_position_encoding({length}, {dim})",
                      hint=lambda: sinusoid_hint(table, length, dim))


def draw_embedding_sizes(rng):
    """``(vocab_size, max_length, embed_dim, length)``, distinct and distinct from the batch of 2."""
    vocab_size, max_length, embed_dim = draw_distinct(rng, (5, 30), (6, 20), (3, 9), taken=(2,))
    [length] = draw_distinct(rng, (3, max_length), taken=(2, vocab_size, embed_dim))  # positions 0..T-1, T < max
    return vocab_size, max_length, embed_dim, length


def draw_embedding(rng, module):
    vocab_size, max_length, embed_dim, length = draw_embedding_sizes(rng)
    token_ids = rng.integers(0, vocab_size, (2, length)).astype("int32")
    layer = module.TokenAndPositionEmbedding(vocab_size, max_length, embed_dim)
    layer(tensor(token_ids))
    weights = random_weights(layer, "TokenAndPositionEmbedding", rng)
    sizes = {"vocab_size": vocab_size, "max_length": max_length, "embed_dim": embed_dim}
    return {"token_ids": token_ids, **{k: np.asarray(v) for k, v in sizes.items()}, **pack_weights(weights)}


def built_embedding(module, inputs):
    layer = module.TokenAndPositionEmbedding(
        int(inputs["vocab_size"]), int(inputs["max_length"]), int(inputs["embed_dim"])
    )
    layer(tensor(inputs["token_ids"]))
    assign_weights(layer, "TokenAndPositionEmbedding", unpack_weights(inputs))
    return layer


def run_embedding(module, inputs):
    layer = built_embedding(module, inputs)
    return {"output": to_numpy(layer(tensor(inputs["token_ids"])), "TokenAndPositionEmbedding")}


@pytest.mark.points(3)
def test_embedding_sublayers(student, rngs):
    for rng in rngs:
        vocab_size, max_length, embed_dim, _ = draw_embedding_sizes(rng)
        layer = student.TokenAndPositionEmbedding(vocab_size, max_length, embed_dim)
        layer(tensor(np.zeros((2, max_length), "int32")))
        sublayers = dict(leaf_layers(layer, "TokenAndPositionEmbedding"))
        for name, rows in (("token_embedding", vocab_size), ("position_embedding", max_length)):
            actual = (sublayers[name].input_dim, sublayers[name].output_dim)
            if actual != (rows, embed_dim):
                raise GradingFailure(Feedback(f"{name} is not the layer the exercise prescribes", f"it is Embedding{actual}",
                                              f"expected Embedding{(rows, embed_dim)}"))


@pytest.mark.points(5)
def test_embedding_matches_reference(student, reference):
    for inputs, expected in reference("embedding", draw_embedding, run_embedding):
        layer = built_embedding(student, inputs)
        token_ids = tensor(inputs["token_ids"])
        output = to_numpy(layer(token_ids), "TokenAndPositionEmbedding")
        check_close(output, expected["output"], "TokenAndPositionEmbedding's output",
                    hint=lambda: embedding_hint(layer, token_ids, output))


def embedding_hint(layer, token_ids, output):
    tokens = to_numpy(layer.token_embedding(token_ids), "token_embedding")
    if is_close(output, tokens):
        return Feedback(cause="the output is the token embedding alone", fix="add position_embedding(positions 0..T-1)")
    return None
