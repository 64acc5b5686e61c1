"""Grading of exercises/attention.py (30 points)."""

import functools

import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, check_shape, is_close, tensor, to_numpy
from grader.families import MASKED_SELF_ATTENTION, MERGE_HEADS, SELF_ATTENTION, SPLIT_HEADS, closest_mistake
from grader.feedback import Feedback
from grader.layout import assign_weights, leaf_layers, pack_weights, random_weights, unpack_weights
from grader.reference import check_matches, draw_distinct, draw_mask


def draw_qkv(rng, module, masked=False):
    # depth 4+: the scales 1, 1/sqrt(d) and 1/d tell apart
    batch, heads, query_length, key_length, depth, value_depth = draw_distinct(
        rng, (2, 4), (2, 5), (3, 8), (3, 8), (4, 17), (2, 7))
    inputs = {
        "query": rng.normal(0, 1.5, (batch, heads, query_length, depth)).astype("float32"),
        "key": rng.normal(0, 1.5, (batch, heads, key_length, depth)).astype("float32"),
        "value": rng.normal(0, 1, (batch, heads, key_length, value_depth)).astype("float32"),
    }
    if masked:
        inputs["mask"] = draw_mask(rng, batch, query_length, key_length)
    return inputs


def attend(module, inputs):
    """The student's (or the reference's) ``(output, weights)`` as NumPy arrays."""
    mask = tensor(inputs["mask"]) if "mask" in inputs else None
    result = module.scaled_dot_product_attention(
        tensor(inputs["query"]), tensor(inputs["key"]), tensor(inputs["value"]), mask=mask
    )
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise GradingFailure("scaled_dot_product_attention must return a pair (output, weights)")
    return {
        "output": to_numpy(result[0], "scaled_dot_product_attention's output"),
        "weights": to_numpy(result[1], "scaled_dot_product_attention's weights"),
    }


def row_sum_hint(weights):
    """A hint when the weights' rows do not sum to 1, else None."""
    rows = weights.sum(axis=-1)
    if np.allclose(rows, 1, atol=1e-3):
        return None
    worst = float(rows.flat[np.argmax(np.abs(rows - 1))])
    where = f"attention weights rows sum to {worst:.2f}, expected 1"
    if np.allclose(weights.sum(axis=-2), 1, atol=1e-3):
        return Feedback(where, "your softmax runs over the queries", "it must run over the keys (the last axis)")
    return Feedback(where, "softmax over the wrong axis?", "it must run over the keys (the last axis)")


def scale_hint(weights, raw, depth, mask=None):
    """Name a wrong score scaling, read off the weights: log w = scale * raw + row constant.

    `raw` holds the unscaled scores Q @ K^T (recorded with the reference), `depth` is d. With a
    `mask`, only the keys each query may attend to take part; so do only the weights that did not
    underflow to 0, whose logarithm says nothing.
    """
    logs = np.log(np.maximum(weights.astype(float), 1e-300))
    allowed = (np.ones(raw.shape, bool) if mask is None else np.broadcast_to(mask, raw.shape)) & (weights > 1e-30)
    centred_logs, centred_raw = (row_centred(values, allowed) for values in (logs, raw))
    scale = float((centred_logs * centred_raw).sum() / (centred_raw**2).sum())
    where = f"the attention weights behave like softmax({scale:.3g} * Q @ K^T), expected 1/sqrt(d) = {depth ** -0.5:.3g}"
    if abs(scale - 1) < 0.05:
        return Feedback(where, "the scores are not scaled", "divide Q @ K^T by sqrt(d) before the softmax")
    if abs(scale * depth - 1) < 0.05:
        return Feedback(where, "you divided the scores by d", "divide them by sqrt(d)")
    if abs(scale / np.sqrt(depth) - 1) < 0.05:
        return Feedback(where, "you multiplied the scores by sqrt(d)", "divide them by it")
    if abs(scale * np.sqrt(depth) - 1) > 0.05:
        return Feedback(where, "the scores are scaled by the wrong factor", "divide Q @ K^T by sqrt(d) before the softmax")
    return None


def row_centred(values, allowed):
    """`values` minus each row's mean over its `allowed` entries; 0 where not allowed."""
    means = np.where(allowed, values, 0).sum(axis=-1, keepdims=True) / allowed.sum(axis=-1, keepdims=True)
    return np.where(allowed, values - means, 0)


def masked_hint(weights, mask, unmasked_weights):
    """Name what went wrong with the mask, read off the weights (and `unmasked_weights()`, those without a mask)."""
    forbidden = ~np.broadcast_to(mask, weights.shape)
    on_forbidden = weights[forbidden]
    if on_forbidden.size and on_forbidden.min() < -1e-3:
        return Feedback(f"weights on masked keys are {on_forbidden.min():.3g}, not 0", "you masked after the softmax",
                        "mask the scores before the softmax")
    if on_forbidden.size and on_forbidden.max() > 1e-6:
        where = f"masked keys get weight up to {on_forbidden.max():.3g}, expected 0"
        if is_close(weights, unmasked_weights()):
            return Feedback(where, "the mask has no effect: the weights are those without a mask",
                            "use the masked scores (ops.where returns a new tensor) before the softmax")
        wrong_axis = row_sum_hint(weights)
        if wrong_axis:  # a softmax over the queries spreads a fully masked key's column evenly
            return Feedback(where, wrong_axis.cause, wrong_axis.fix)
        return Feedback(where, "the mask is not applied as it should be",
                        "mask the scores before the softmax; True means 'may attend'")
    rows = weights.sum(axis=-1)
    if not np.allclose(rows, 1, atol=1e-3) and not np.allclose(weights.sum(axis=-2), 1, atol=1e-3):
        worst = float(rows.flat[np.argmax(np.abs(rows - 1))])
        return Feedback(f"with a mask the attention weights rows sum to {worst:.2f}, expected 1",
                        "zeroing weights after the softmax loses probability", "mask the scores before the softmax")
    return row_sum_hint(weights)


def depth(inputs):
    return inputs["query"].shape[-1]


@pytest.mark.points(6)
def test_attention_matches_reference(student, reference):
    for inputs, expected in reference("attention", draw_qkv, attend):
        actual = attend(student, inputs)
        weights = actual["weights"]
        check_close(weights, expected["weights"], "the attention weights",
                    hint=lambda: row_sum_hint(weights) or scale_hint(weights, expected["scores"], depth(inputs)))
        check_close(actual["output"], expected["output"], "the attention output",
                    hint=lambda: Feedback(cause="the weights are right but the output is not weights @ value"))


@pytest.mark.points(3)
def test_attention_weights_are_probabilities(student, rngs):
    for rng in rngs:
        weights = attend(student, draw_qkv(rng, None))["weights"]
        if weights.min() < 0:
            raise GradingFailure(f"an attention weight is {weights.min():.3g}: softmax weights are never negative")
        hint = row_sum_hint(weights)
        if hint:
            raise GradingFailure(hint)


@pytest.mark.points(5)
def test_attention_masked_keys_get_zero_weight(student, reference):
    draw = functools.partial(draw_qkv, masked=True)
    for inputs, expected in reference("masked_attention", draw, attend):
        actual = attend(student, inputs)
        weights = actual["weights"]
        unmasked = {name: array for name, array in inputs.items() if name != "mask"}
        hint = masked_hint(weights, inputs["mask"], lambda: attend(student, unmasked)["weights"])
        if hint:
            raise GradingFailure(hint)
        check_close(weights, expected["weights"], "the masked attention weights",
                    hint=lambda: scale_hint(weights, expected["scores"], depth(inputs), inputs["mask"]))
        check_close(actual["output"], expected["output"], "the masked attention output")


def draw_heads(rng, module):
    batch, heads, length, head_dim = draw_distinct(rng, (2, 4), (2, 5), (3, 7), (2, 6))
    return {
        "x": rng.normal(size=(batch, length, heads * head_dim)).astype("float32"),
        "heads": rng.normal(size=(batch, heads, length, head_dim)).astype("float32"),
    }


def run_heads(module, inputs):
    num_heads = inputs["heads"].shape[1]
    return {
        "split": to_numpy(module.split_heads(tensor(inputs["x"]), num_heads), "split_heads"),
        "merged": to_numpy(module.merge_heads(tensor(inputs["heads"])), "merge_heads"),
    }


@pytest.mark.points(2)
def test_split_heads(student, reference):
    for inputs, expected in reference("heads", draw_heads, run_heads):
        x, num_heads = inputs["x"], inputs["heads"].shape[1]
        batch, length, channels = x.shape
        split = to_numpy(student.split_heads(tensor(x), num_heads), "split_heads")
        check_shape(split, (batch, num_heads, length, channels // num_heads), f"split_heads of a {x.shape} tensor")
        check_matches(split, expected["split"], "split_heads",
                      hint=lambda: closest_mistake(split, expected, "split", SPLIT_HEADS))


@pytest.mark.points(2)
def test_merge_heads(student, reference):
    for inputs, expected in reference("heads", draw_heads, run_heads):
        heads = inputs["heads"]
        batch, num_heads, length, head_dim = heads.shape
        merged = to_numpy(student.merge_heads(tensor(heads)), "merge_heads")
        check_shape(merged, (batch, length, num_heads * head_dim), f"merge_heads of a {heads.shape} tensor")
        check_matches(merged, expected["merged"], "merge_heads",
                      hint=lambda: closest_mistake(merged, expected, "merged", MERGE_HEADS))


@pytest.mark.points(2)
def test_self_attention_rejects_indivisible_width(student):
    try:
        student.MultiHeadSelfAttention(10, 3)
    except ValueError:
        return
    raise GradingFailure(Feedback("MultiHeadSelfAttention(embed_dim=10, num_heads=3) raised no ValueError",
                                  "10 is not divisible by 3", "check it in __init__ and raise ValueError"))


def draw_self_attention_sizes(rng):
    """``(batch, length, num_heads, head_dim)``, distinct (and ``embed_dim`` larger than all)."""
    return draw_distinct(rng, (2, 4), (3, 9), (2, 5), (2, 6))


@pytest.mark.points(2)
def test_self_attention_sublayers(student, rngs):
    for rng in rngs:
        batch, length, num_heads, head_dim = draw_self_attention_sizes(rng)
        embed_dim = num_heads * head_dim
        layer = student.MultiHeadSelfAttention(embed_dim, num_heads)
        layer(tensor(np.zeros((batch, length, embed_dim), "float32")))
        for path, dense in leaf_layers(layer, "MultiHeadSelfAttention"):
            if dense.units != embed_dim or not dense.use_bias:
                raise GradingFailure(Feedback(
                    f"{path} is not the layer the exercise prescribes",
                    "it has no bias" if not dense.use_bias else "it does not have embed_dim units",
                    f"expected Dense({embed_dim}) with a bias"))


def draw_self_attention(rng, module):
    batch, length, num_heads, head_dim = draw_self_attention_sizes(rng)
    x = rng.normal(size=(batch, length, num_heads * head_dim)).astype("float32")
    layer = module.MultiHeadSelfAttention(num_heads * head_dim, num_heads)
    layer(tensor(x))
    weights = random_weights(layer, "MultiHeadSelfAttention", rng)
    return {"x": x, "mask": draw_mask(rng, batch, length, length), "num_heads": np.asarray(num_heads), **pack_weights(weights)}


def built_self_attention(module, inputs):
    x = inputs["x"]
    layer = module.MultiHeadSelfAttention(x.shape[-1], int(inputs["num_heads"]))
    layer(tensor(x))
    assign_weights(layer, "MultiHeadSelfAttention", unpack_weights(inputs))
    return layer


def run_self_attention(module, inputs):
    layer = built_self_attention(module, inputs)
    x = tensor(inputs["x"])
    return {
        "unmasked": to_numpy(layer(x), "MultiHeadSelfAttention"),
        "masked": to_numpy(layer(x, tensor(inputs["mask"])), "MultiHeadSelfAttention"),
    }


def attention_sizes(inputs):
    """The sizes the attention's messages name."""
    width, num_heads = inputs["x"].shape[-1], int(inputs["num_heads"])
    return {"width": width, "num_heads": num_heads, "head_size": width // num_heads}


@pytest.mark.points(4)
def test_self_attention_matches_reference(student, reference):
    for inputs, expected in reference("self_attention", draw_self_attention, run_self_attention):
        output = to_numpy(built_self_attention(student, inputs)(tensor(inputs["x"])), "MultiHeadSelfAttention")
        check_close(output, expected["unmasked"], "MultiHeadSelfAttention's output", hint=lambda: closest_mistake(
            output, expected, "unmasked", SELF_ATTENTION, **attention_sizes(inputs)))


@pytest.mark.points(4)
def test_self_attention_with_mask(student, reference):
    for inputs, expected in reference("self_attention", draw_self_attention, run_self_attention):
        layer = built_self_attention(student, inputs)
        x, mask = tensor(inputs["x"]), tensor(inputs["mask"])
        positional = to_numpy(layer(x, mask), "MultiHeadSelfAttention")
        check_close(positional, expected["masked"], "MultiHeadSelfAttention's output with a mask",
                    hint=lambda: closest_mistake(positional, expected, "masked", MASKED_SELF_ATTENTION,
                                                 **attention_sizes(inputs)))
        keyword = to_numpy(layer(x, attention_mask=mask), "MultiHeadSelfAttention")
        check_close(keyword, positional, "the output when the mask is passed as attention_mask=",
                    hint=lambda: Feedback(cause="the mask is not taken by its name",
                                          fix="the call argument must be named attention_mask"))
