"""Grading of exercises/masking.py (20 points)."""

import functools

import numpy as np
import pytest

from grader.checks import GradingFailure, check_dtype, check_shape, tensor, to_numpy
from grader.families import CAUSAL_MASK, PADDING_MASK, closest_mistake
from grader.feedback import Feedback
from grader.reference import check_matches, draw_distinct


def draw_length(rng, module):
    return {"length": np.asarray(rng.integers(3, 13))}


def run_causal_mask(module, inputs):
    return {"mask": to_numpy(module.causal_mask(int(inputs["length"])), "causal_mask")}


@pytest.mark.points(5)
def test_causal_mask(student, reference):
    for inputs, expected in reference("causal_mask", draw_length, run_causal_mask):
        length = int(inputs["length"])
        mask = student.causal_mask(length)
        check_dtype(mask, "bool", f"causal_mask({length})")
        mask = to_numpy(mask, "causal_mask")
        check_shape(mask, (length, length), f"causal_mask({length})")
        check_matches(mask, expected["mask"], f"causal_mask({length})",
                      hint=lambda: closest_mistake(mask, expected, "mask", CAUSAL_MASK))


def draw_token_ids(rng, module):
    batch, length = draw_distinct(rng, (2, 5), (3, 10))
    pad_id = int(rng.integers(1, 5))
    token_ids = rng.integers(pad_id + 1, 20, (batch, length))
    for row, real in enumerate(rng.integers(1, length, batch)):
        token_ids[row, real:] = pad_id  # padding goes at the end
    return {"token_ids": token_ids.astype("int32"), "pad_id": np.asarray(pad_id)}


def run_padding_mask(module, inputs):
    token_ids = inputs["token_ids"]
    zero_padded = np.where(token_ids == inputs["pad_id"], 0, token_ids)
    return {
        "default_pad_id": to_numpy(module.padding_mask(tensor(zero_padded)), "padding_mask"),
        "given_pad_id": to_numpy(module.padding_mask(tensor(token_ids), int(inputs["pad_id"])), "padding_mask"),
    }


@pytest.mark.points(5)
def test_padding_mask(student, reference):
    for inputs, expected in reference("padding_mask", draw_token_ids, run_padding_mask):
        check_padding_mask(student, inputs, expected)


def check_padding_mask(student, inputs, expected):
    token_ids, pad_id = inputs["token_ids"], int(inputs["pad_id"])
    batch, length = token_ids.shape
    mask = student.padding_mask(tensor(token_ids), pad_id)
    check_dtype(mask, "bool", "padding_mask")
    mask = to_numpy(mask, "padding_mask")
    if mask.shape != (batch, 1, 1, length):
        raise GradingFailure(Feedback(
            f"padding_mask of ids shaped {(batch, length)} has shape {mask.shape}",
            "it does not broadcast over the heads and the queries", f"give it the shape {(batch, 1, 1, length)}"))
    actual = run_padding_mask(student, inputs)
    for key in ("given_pad_id", "default_pad_id"):
        check_matches(actual[key], expected[key], "padding_mask", hint=lambda: closest_mistake(
            actual[key], expected, key, PADDING_MASK) or padding_mismatch(key, pad_id))


def padding_mismatch(key, pad_id):
    """Why the padding mask of case `key` differs, when no known mistake explains it."""
    if key == "given_pad_id":
        return Feedback(cause=f"padding_mask(token_ids, pad_id={pad_id}) does not mark exactly the tokens equal to pad_id")
    return Feedback(cause="the default pad_id is not 0", fix="padding_mask(token_ids) must use pad_id=0 by default")


LARGE_SCORE = 1e5
"""A score that a finite but too small fill (``-1e4``) cannot push below the others."""


def draw_scores(rng, module, dtype):
    batch, heads, length = draw_distinct(rng, (2, 5), (2, 5), (3, 9))
    mask = rng.random((batch, 1, length, length)) < 0.6
    mask[..., np.arange(length), rng.integers(0, length, length)] = True  # every query may attend somewhere
    scores = rng.normal(0, 3, (batch, heads, length, length))
    if dtype == "float32":  # masked keys with large scores, as wide or unscaled models give: a fill must dwarf them
        scores = np.where(mask, scores, scores + LARGE_SCORE)
    scores = scores.astype(dtype)
    return {"scores": scores, "mask": mask}


def run_apply_mask(module, inputs):
    """The softmax weights of the masked scores: what masking must get right."""
    masked = to_numpy(module.apply_mask(tensor(inputs["scores"]), tensor(inputs["mask"])), "apply_mask")
    shifted = masked.astype("float64") - masked.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return {"weights": weights / weights.sum(axis=-1, keepdims=True)}


def check_apply_mask(student, inputs, expected, dtype):
    scores, mask = inputs["scores"], inputs["mask"]
    masked = student.apply_mask(tensor(scores), tensor(mask))
    check_dtype(masked, dtype, f"apply_mask on {dtype} scores")
    masked = to_numpy(masked, "apply_mask")
    check_shape(masked, scores.shape, "apply_mask's result")
    allowed = np.broadcast_to(mask, scores.shape)
    if not np.all(np.isfinite(masked)):
        raise GradingFailure(Feedback(
            f"scores overflowed to -inf/NaN in {dtype}",
            f"your mask value does not fit {dtype} (its most negative finite value is {np.finfo(dtype).min:.5g})",
            "derive it from the dtype"))
    if np.array_equal(masked, scores) and not masks_anything(student, mask, dtype):
        raise GradingFailure(Feedback(
            "apply_mask returned the scores unchanged", "the mask has no effect",
            "use the masked result: ops.where and ops.add return a new tensor, they never change their inputs"))
    if not np.array_equal(masked[allowed], scores[allowed]):
        if np.array_equal(masked[~allowed], scores[~allowed]):
            raise GradingFailure(Feedback(
                "apply_mask changed the scores where the mask is True and kept them where it is False",
                "you masked the wrong positions",
                "True means 'may attend', so replace the scores where it is False"))
        raise GradingFailure("apply_mask changed scores where the mask is True: those must stay as they are")
    weights = run_apply_mask(student, inputs)["weights"]
    leaked = float(weights[~allowed].max(initial=0))
    if leaked > 1e-3:
        raise GradingFailure(Feedback(
            f"a masked position still gets softmax weight {leaked:.3g}",
            "the number you put there is not negative enough",
            f"it must dwarf every real score (some here are near {LARGE_SCORE:g}); derive it from the dtype"))
    check_matches(weights, expected["weights"], "softmax of the masked scores", dtype)


def masks_anything(student, mask, dtype):
    """Whether `student.apply_mask` changes scores of 0 anywhere: a fill too small to change the
    scores drawn still shows there, a masked result never used does not."""
    zeros = np.zeros(np.shape(mask), dtype)
    return bool(np.any(to_numpy(student.apply_mask(tensor(zeros), tensor(mask)), "apply_mask")))


@pytest.mark.points(4)
def test_apply_mask_float32(student, reference):
    draw = functools.partial(draw_scores, dtype="float32")
    for inputs, expected in reference("apply_mask_float32", draw, run_apply_mask):
        check_apply_mask(student, inputs, expected, "float32")


@pytest.mark.points(6)
def test_apply_mask_float16(student, reference):
    draw = functools.partial(draw_scores, dtype="float16")
    for inputs, expected in reference("apply_mask_float16", draw, run_apply_mask):
        check_apply_mask(student, inputs, expected, "float16")
