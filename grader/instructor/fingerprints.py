"""What each known mistake computes on a case's inputs, and the reference's inner values.

`fingerprints(exercise, case, inputs)` returns, for one case the checks compare with the
reference, the arrays the shipped grader diagnoses from: every family of `grader.families`
computed on the case's inputs (under ``"<output>~<family>"``), the raw scores the attention's
scale is fitted to, the angular speeds the sine/cosine table's columns are fitted to, and the
inputs and outputs of every sublayer of a block or a GPT (the *trace*, ``"blocks.0.norm1>in"``). The live reference adds them to each case's expected
outputs; the recordings keep them, so the release needs none of this code.

Example::

    >>> prints = fingerprints("masking", "causal_mask", {"length": np.asarray(3)})
    >>> prints["mask~transposed"].astype(int).tolist()
    [[1, 1, 1], [0, 1, 1], [0, 0, 1]]
"""

import numpy as np

from grader import families
from grader.diagnosis import block_steps, gpt_steps
from grader.families import fingerprint_key
from grader.instructor import algorithms
from grader.layout import PRETOKEN_PATTERN, unpack_weights

SINUSOID = {
    "swapped": {"sine_first": False}, "half": {"exponent": "half"}, "concatenated": {"interleaved": False},
    "column": {"exponent": "column"}, "twice_column": {"exponent": "twice_column"}, "base": {"base": 1000.0},
    "unparenthesised": {"parenthesised": False}, "from_one": {"first_position": 1},
}
EMBEDDING = {
    "no_positions": {"positions": "none"}, "positions_only": {"tokens": "none"},
    "positions_from_one": {"positions": "from_one"}, "positions_of_token_ids": {"positions": "token_ids"},
    "scaled_tokens": {"tokens": "scaled"},
}
SELF_ATTENTION = {
    **{f"scale_{scale}": {"scale": scale} for scale in algorithms.SCALES if scale != "sqrt_head_size"},
    **{family: {"projections": tuple(family.split("_")[1:])} for family in families.PROJECTION_FAMILIES},
    "split_bare": {"split": "bare"}, "merge_bare": {"merge": "bare"}, "both_bare": {"split": "bare", "merge": "bare"},
    "split_strided": {"split": "strided"}, "merge_strided": {"merge": "strided"},
    "both_strided": {"split": "strided", "merge": "strided"},
    "no_output_projection": {"output_projection": False}, "softmax_over_queries": {"softmax_axis": -2},
    "mask_ignored": {"mask": None}, "mask_inverted": {"invert_mask": True},
}
MERGES = {"across_pre_tokens": {"across_words": True}, "smaller_of_tied": {"tie": min}}
LOSS = {"unshifted": {"shift": 0}, "unshifted_last_dropped": {"shift": 0, "drop_last": True},
        "shifted_backwards": {"shift": -1}, "averaged_over_padding": {"over_padding": True},
        "padding_scored": {"pad_id": None}}
SCHEDULE = {
    "warmup_from_one": {"warmup_shift": 1}, "warmup_one_step_longer": {"warmup_extra": 1},
    "warmup_both": {"warmup_shift": 1, "warmup_extra": 1}, "cosine_over_total": {"cosine_over": "total_steps"},
    "floor_ignored": {"use_floor": False}, "unclipped": {"clipped": False},
}
"""``{family: knobs}``: the keyword arguments that make each mistake of `grader.families`."""


def fingerprints(exercise, case, inputs):
    """``{key: array}`` for case `case` of `exercise` drawn as `inputs` (float arrays as float32)."""
    computed = CASES.get((exercise, case), lambda inputs: {})(inputs)
    return {key: value.astype("float32") if np.issubdtype(value.dtype, np.floating) else value
            for key, value in computed.items() if value is not None}


def _families(output, table, compute):
    """``{"<output>~<family>": compute(family)}`` for every family of `table`."""
    return {fingerprint_key(output, family): compute(family) for family in table}


def _sinusoid(inputs):
    length, dim = int(inputs["length"]), int(inputs["dim"])
    return {"speeds": algorithms.angular_speeds(dim),
            **_families("table", families.SINUSOID,
                        lambda family: algorithms.sinusoid(length, dim, **SINUSOID[family]))}


def _embedding(token_ids, weights, output):
    return _families(output, families.EMBEDDING,
                     lambda family: algorithms.embedding(token_ids, weights, **EMBEDDING[family]))


def _causal_mask(inputs):
    mask = algorithms.causal_mask(int(inputs["length"]))
    wrong = {"transposed": mask.T, "strict": np.tril(mask, -1), "inverted": ~mask, "everything": np.ones_like(mask)}
    return _families("mask", families.CAUSAL_MASK, wrong.get)


def _padding_mask(inputs):
    token_ids, pad_id = inputs["token_ids"], int(inputs["pad_id"])
    zero_padded = np.where(token_ids == pad_id, 0, token_ids)
    return {
        **_families("given_pad_id", families.PADDING_MASK, {
            "inverted": ~algorithms.padding_mask(token_ids, pad_id),
            "pad_id_ignored": algorithms.padding_mask(token_ids, 0)}.get),
        **_families("default_pad_id", families.PADDING_MASK, {
            "inverted": ~algorithms.padding_mask(zero_padded, 0)}.get),
    }


def _raw_scores(inputs):
    return {"scores": inputs["query"].astype(float) @ np.swapaxes(inputs["key"].astype(float), -1, -2)}


def _heads(inputs):
    x, heads = inputs["x"], inputs["heads"]
    return {
        **_families("split", families.SPLIT_HEADS, lambda layout: algorithms.split_heads(x, heads.shape[1], layout)),
        **_families("merged", families.MERGE_HEADS, lambda layout: algorithms.merge_heads(heads, layout)),
    }


def _self_attention_families(output, x, weights, num_heads, mask):
    table = families.SELF_ATTENTION if mask is None else families.MASKED_SELF_ATTENTION
    return _families(output, table, lambda family: algorithms.self_attention(
        x, weights, num_heads, **{"mask": mask, **SELF_ATTENTION[family]}))


def _self_attention(inputs):
    x, num_heads, weights = inputs["x"], int(inputs["num_heads"]), unpack_weights(inputs)
    return {**_self_attention_families("unmasked", x, weights, num_heads, None),
            **_self_attention_families("masked", x, weights, num_heads, inputs["mask"])}


def _sublayer_families(trace, path, weights, num_heads, mask):
    """The families of sublayer `path` (``blocks.0.norm1``), computed on its input in `trace`."""
    name = path.rpartition(".")[2]
    output = f"{path}>out"
    value = trace.get(f"{path}>in")
    if name in ("norm1", "norm2", "final_norm"):
        return {fingerprint_key(output, "epsilon"): algorithms.layer_norm(value, weights[path], 1e-3)}
    if name == "ffn_in":
        return _families(output, families.FFN_IN,
                         lambda activation: algorithms.ACTIVATIONS[activation](algorithms.dense(value, weights[path])))
    if name == "attention":
        return _self_attention_families(output, value, algorithms.sublayer_weights(weights, path), num_heads, mask)
    return {}


def _block(inputs):
    x, mask, num_heads, weights = inputs["x"], inputs["mask"], int(inputs["num_heads"]), unpack_weights(inputs)
    trace = {}
    algorithms.block(x, weights, num_heads, mask, trace=trace)
    prints = _families("output", families.BLOCK,
                       lambda wiring: algorithms.block(x, weights, num_heads, mask, wiring))
    for path in block_steps():
        prints.update(_sublayer_families(trace, path, weights, num_heads, mask))
    return {**trace, **prints}


def _gpt(inputs):
    token_ids, num_heads, weights = inputs["token_ids"], int(inputs["num_heads"]), unpack_weights(inputs)
    num_layers = len({path.split(".")[1] for path in weights if path.startswith("blocks.")})
    mask = algorithms.causal_mask(token_ids.shape[1])
    trace = {}
    algorithms.gpt(token_ids, weights, num_heads, num_layers, trace=trace)
    prints = {"causal_mask": mask, **_embedding(token_ids, algorithms.sublayer_weights(weights, "embedding"),
                                                "embedding>out")}
    prints.update(_families("logits", families.GPT,
                            lambda wiring: algorithms.gpt(token_ids, weights, num_heads, num_layers, wiring)))
    for index in range(num_layers):
        block_weights = algorithms.sublayer_weights(weights, f"blocks.{index}")
        stream = trace[f"blocks.{index}.norm1>in"]
        prints.update(_families(f"blocks.{index}>out", families.BLOCK,
                                lambda wiring: algorithms.block(stream, block_weights, num_heads, mask, wiring)))
    for path in gpt_steps(num_layers):
        prints.update(_sublayer_families(trace, path, weights, num_heads, mask))
    return {**trace, **prints}


def _merges(inputs):
    text, num_merges = str(inputs["text"]), int(inputs["num_merges"])
    return {"merges>ties": algorithms.merge_ties(text, num_merges, PRETOKEN_PATTERN),
            **_families("merges", families.MERGES,
                        lambda family: algorithms.train_merges(text, num_merges, PRETOKEN_PATTERN, **MERGES[family]))}


def _loss(inputs):
    pad_id = int(inputs["pad_id"]) if "pad_id" in inputs else None
    return _families("loss", families.LOSS, lambda family: algorithms.next_token_loss(
        inputs["token_ids"], inputs["logits"], **{"pad_id": pad_id, **LOSS[family]}))


def _schedule(inputs):
    settings = {name: float(inputs[name]) for name in ("peak", "floor")}
    settings.update({name: int(inputs[name]) for name in ("warmup_steps", "total_steps")})

    def rates(family):
        knobs = dict(SCHEDULE[family])
        if "cosine_over" in knobs:
            knobs["cosine_over"] = settings[knobs["cosine_over"]]
        return algorithms.warmup_cosine(inputs["steps"], **settings, **knobs)

    return _families("rates", families.SCHEDULE, rates)


CASES = {
    ("positional_embedding", "sinusoid"): _sinusoid,
    ("positional_embedding", "formula"): _sinusoid,
    ("positional_embedding", "embedding"): lambda inputs: _embedding(
        inputs["token_ids"], unpack_weights(inputs), "output"),
    ("masking", "causal_mask"): _causal_mask,
    ("masking", "padding_mask"): _padding_mask,
    ("attention", "attention"): _raw_scores,
    ("attention", "masked_attention"): _raw_scores,
    ("attention", "heads"): _heads,
    ("attention", "self_attention"): _self_attention,
    ("model", "block"): _block,
    ("model", "gpt"): _gpt,
    ("tokenizer", "merges"): _merges,
    **{("training", case): _loss for case in ("loss", "copying", "large_logits", "float16")},
    ("training", "schedule"): _schedule,
}
"""``{(exercise, case): inputs -> {key: array}}``; a case not listed has no fingerprints."""
