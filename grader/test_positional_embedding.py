"""Grading of exercises/positional_embedding.py (20 points)."""

import keras
import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, check_dtype, check_shape, tensor, to_numpy
from grader.families import EMBEDDING, SINUSOID, closest_mistake
from grader.feedback import Feedback
from grader.layout import assign_weights, leaf_layers, pack_weights, random_weights, unpack_weights
from grader.reference import check_matches, draw_distinct


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


def formula_sizes(rng, module):
    return {"length": np.asarray(50), "dim": np.asarray(16)}  # wide and long enough to tell every misreading apart


@pytest.mark.points(5)
def test_sinusoidal_follows_the_formula(student, reference):
    for inputs, expected in reference("formula", formula_sizes, run_sinusoid)[:1]:  # the same sizes on both draws
        table = run_sinusoid(student, inputs)["table"]
        check_close(table, expected["table"], "sinusoidal_position_encoding(50, 16)", source="the formula's",
                    hint=lambda: sinusoid_hint(table, expected))


def sinusoid_hint(table, expected):
    """Why a sine/cosine table differs: a known misreading of the formula, else its columns' speeds."""
    return closest_mistake(table, expected, "table", SINUSOID) or speed_hint(table, expected["speeds"])


def speed_hint(table, speeds):
    """Name columns whose angle grows by another amount per position than the formula's `speeds`.

    Every column of a sine/cosine table, whatever its phase, satisfies x[p-1] + x[p+1] =
    2 cos(w) x[p] with w its angular speed: a least-squares fit of that recurrence reads w off
    the table. Only speeds above 0.01 radians per position are compared: float32 values tell no
    smaller ones apart.
    """
    table = np.asarray(table, float)
    middle, around = table[1:-1], table[:-2] + table[2:]
    power = (middle**2).sum(axis=0)
    cosines = np.divide((middle * around).sum(axis=0), 2 * power, out=np.ones_like(power), where=power > 1e-12)
    if not np.allclose(around, 2 * cosines * middle, atol=1e-3):
        return None  # some column is no sinusoid of the position
    fitted = np.arccos(np.clip(cosines, -1, 1))
    wrong = np.flatnonzero((speeds > 0.01) & ~np.isclose(fitted, speeds, rtol=0.05))
    if not wrong.size:
        return None
    column = int(wrong[0])
    return Feedback(cause="the columns' angles grow at other speeds than the formula's (look at the exponent)",
                    fix=f"column {column}'s angle grows by {fitted[column]:.3g} per position, the formula's by "
                        f"{speeds[column]:.3g}: p / 10000 ** (2i / dim), 2i the even column of the pair")


@pytest.mark.points(4)
def test_sinusoidal_matches_reference(student, reference):
    for inputs, expected in reference("sinusoid", draw_sizes, run_sinusoid):
        length, dim = int(inputs["length"]), int(inputs["dim"])
        table = run_sinusoid(student, inputs)["table"]
        check_matches(table, expected["table"], f"sinusoidal_position_encoding({length}, {dim})",
                      hint=lambda: sinusoid_hint(table, expected))


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
        for name, rows, size in (("token_embedding", vocab_size, "vocab_size"),
                                 ("position_embedding", max_length, "max_length")):
            actual = (sublayers[name].input_dim, sublayers[name].output_dim)
            if actual != (rows, embed_dim):
                raise GradingFailure(Feedback(f"{name} is not the layer the exercise prescribes",
                                              f"its shape is not ({size}, embed_dim)", f"expected Embedding{(rows, embed_dim)}"))


@pytest.mark.points(5)
def test_embedding_matches_reference(student, reference):
    for inputs, expected in reference("embedding", draw_embedding, run_embedding):
        output = run_embedding(student, inputs)["output"]
        check_close(output, expected["output"], "TokenAndPositionEmbedding's output",
                    hint=lambda: closest_mistake(output, expected, "output", EMBEDDING))
