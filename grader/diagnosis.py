"""Why a layer's output differs from the reference: find the first sublayer that differs, and why.

The reference runs the contract's dataflow (the lessons' formulas) one named sublayer at a
time and keeps every sublayer's input and output: the *trace*. On a mismatch the grader feeds
each of the student's sublayers the reference's input for it, in the order of the dataflow,
and stops at the first whose output differs. Its likely cause is then looked up by
recomputing that sublayer in NumPy, with the same weights, under each known variation
(tanh GELU, Keras' default epsilon, unscaled scores, ...).

Example::

    expected = trace_gpt(reference_model, token_ids)        # {"blocks.0.norm1>in": ..., ...}
    first_divergence(student_model, gpt_steps(2), expected, weights, token_ids, mask).at("full")
    # 'blocks.0: norm1 and attention match; ffn_in differs — yours matches the tanh approximation: ...'
"""

import math

import numpy as np

from grader.checks import exception_message, is_close, tensor, to_numpy
from grader.feedback import Feedback
from grader.layout import FFN_ACTIVATION, LAYER_NORM_EPSILON

BLOCK_STEPS = ("norm1", "attention", "norm2", "ffn_in", "ffn_out")
"""The sublayers of a block in the order the dataflow runs them."""


def causal_numpy(length):
    """The ``(T, T)`` causal mask as a NumPy array: True where key <= query."""
    return np.tril(np.ones((length, length), bool))


def causal(length):
    """The causal mask as a tensor of the current backend."""
    return tensor(causal_numpy(length))


def block_steps(prefix=""):
    return [f"{prefix}{name}" for name in BLOCK_STEPS]


def gpt_steps(num_layers):
    """The named sublayers of a GPT in dataflow order."""
    blocks = [path for index in range(num_layers) for path in block_steps(f"blocks.{index}.")]
    return ["embedding", *blocks, "final_norm", "lm_head"]


def trace_block(block, x, mask, prefix="", trace=None):
    """Run `block` as the lesson's formula does, step by step; returns ``(output, trace)``.

    `trace` gains ``"<path>>in"`` and ``"<path>>out"`` NumPy arrays for every sublayer.
    """
    trace = {} if trace is None else trace

    def step(name, value, *args):
        trace[f"{prefix}{name}>in"] = to_numpy(value, name)
        result = getattr(block, name)(value, *args)
        trace[f"{prefix}{name}>out"] = to_numpy(result, name)
        return result

    x = x + step("attention", step("norm1", x), mask)
    return x + step("ffn_out", step("ffn_in", step("norm2", x))), trace


def trace_gpt(model, token_ids):
    """Run `model` (a GPT) as the lesson's formula does, step by step: ``(logits, trace)``."""
    x = model.embedding(token_ids)
    trace = {"embedding>out": to_numpy(x, "embedding")}
    mask = causal(token_ids.shape[1])
    for index, block in enumerate(model.blocks):
        x, _ = trace_block(block, x, mask, f"blocks.{index}.", trace)
    trace["final_norm>in"] = to_numpy(x, "final_norm")
    x = model.final_norm(x)
    trace["final_norm>out"] = trace["lm_head>in"] = to_numpy(x, "final_norm")
    logits = model.lm_head(x)
    trace["lm_head>out"] = to_numpy(logits, "lm_head")
    return logits, trace


def first_divergence(layer, steps, expected, weights, first_input, mask, num_heads):
    """Describe the first sublayer of `layer` whose output differs on the reference's inputs.

    Args:
        layer: the student's block or GPT, holding the same weights as the reference.
        steps: the sublayer paths in dataflow order (`block_steps`, `gpt_steps`).
        expected: the reference's trace.
        weights: ``{path: [arrays]}``, the weights both hold.
        first_input: the input of a step the trace holds no input for (the token ids).
        mask: the attention mask the blocks get.
        num_heads: the attention heads of each block.

    Returns:
        A `Feedback`, or None when every sublayer matches (then the wiring of ``call`` differs).
    """
    matched = {}
    for path in steps:
        group, _, name = path.rpartition(".")
        value = expected.get(f"{path}>in", first_input)
        sublayer = _resolve(layer, path)
        try:
            args = (tensor(value), mask) if name == "attention" else (tensor(value),)
            output = to_numpy(sublayer(*args), path)
        except Exception as error:  # a sublayer that cannot even run on the reference's input
            return Feedback(f"{path} fails on the reference's input: {type(error).__name__}: {exception_message(error)}")
        if not is_close(output, expected[f"{path}>out"]):
            cause = sublayer_cause(path, output, np.asarray(value), weights, mask, num_heads)
            before = matched.get(group, [])
            message = f"{path} differs"
            if group and before:
                message = f"{group}: {_listed(before)} {'matches' if len(before) == 1 else 'match'}; {name} differs"
            elif matched:
                message = f"every sublayer before {path} matches; {path} differs"
            return (cause or Feedback()).located(message)
        matched.setdefault(group, []).append(name)
    return None


def _listed(names):
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _resolve(layer, path):
    for part in path.split("."):
        layer = layer[int(part)] if part.isdigit() else getattr(layer, part)
    return layer


def sublayer_cause(path, output, value, weights, mask, num_heads):
    """The known variation of sublayer `path` that `output` matches, as a `Feedback`; else None."""
    name = path.rpartition(".")[2]
    if name in ("norm1", "norm2", "final_norm"):
        if is_close(output, layer_norm(value, weights[path], 1e-3)):
            return Feedback(cause="yours matches Keras' default epsilon=1e-3",
                            fix=f"LayerNormalization(epsilon={LAYER_NORM_EPSILON}) expected")
        return None
    if name == "ffn_in":
        linear = dense(value, weights[path])
        for activation, computed in (("the tanh approximation", gelu(linear, approximate=True)),
                                     ("ReLU", np.maximum(linear, 0)), ("no activation", linear)):
            if is_close(output, computed):
                return Feedback(cause=f"yours matches {activation}",
                                fix=f'exact GELU expected (activation="{FFN_ACTIVATION}")')
        return None
    if name == "attention":
        attention_weights = {key.rpartition(".")[2]: arrays for key, arrays in weights.items()
                             if key.startswith(f"{path}.")}
        return attention_cause(output, value, attention_weights, num_heads, to_numpy(mask, "mask"))
    return None


def dense(x, weights):
    """A Keras Dense layer in NumPy (float64): ``x @ kernel (+ bias)``."""
    kernel, *bias = weights
    return np.asarray(x, float) @ kernel + (bias[0] if bias else 0)


def layer_norm(x, weights, epsilon):
    """Keras' LayerNormalization over the last axis, in NumPy."""
    gamma, beta = weights
    x = np.asarray(x, float)
    mean, variance = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def gelu(x, approximate=False):
    """GELU in NumPy: exact (with erf) or GPT-2's tanh approximation."""
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))


def self_attention(x, weights, num_heads, mask=None, scale=True, split_transpose=True, merge_transpose=True):
    """Multi-head self-attention in NumPy, with `weights` ``{"query_dense": [kernel, bias], ...}``.

    `scale` False leaves the scores unscaled; `split_transpose` (`merge_transpose`) False splits
    (merges) the heads by a bare reshape, the classic bug.
    """
    batch, length, width = x.shape
    head_dim = width // num_heads

    def split(h):
        if split_transpose:
            return h.reshape(batch, length, num_heads, head_dim).transpose(0, 2, 1, 3)
        return h.reshape(batch, num_heads, length, head_dim)

    query, key, value = (split(dense(x, weights[f"{name}_dense"])) for name in ("query", "key", "value"))
    scores = query @ key.swapaxes(-1, -2) / (np.sqrt(head_dim) if scale else 1)
    if mask is not None:
        scores = np.where(mask, scores, -1e30)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attended = scores / scores.sum(axis=-1, keepdims=True) @ value
    merged = attended.transpose(0, 2, 1, 3) if merge_transpose else attended
    return dense(merged.reshape(batch, length, width), weights["output_dense"])


BARE_RESHAPE = Feedback(cause="the heads are split or merged by a bare reshape",
                        fix="reshape (B, T, C) to (B, T, H, C/H) and move the head axis forward (and back before merging)")
ATTENTION_CAUSES = [
    (Feedback(cause="the scores are not scaled", fix="divide Q @ K^T by sqrt(head size) before the softmax"),
     {"scale": False}),
    (BARE_RESHAPE, {"split_transpose": False}),
    (BARE_RESHAPE, {"merge_transpose": False}),
    (BARE_RESHAPE, {"split_transpose": False, "merge_transpose": False}),
    (Feedback(cause="the mask is not applied", fix="pass attention_mask on to the attention"), {"mask": None}),
]
"""``[(cause, variation)]``: the known attention mistakes (`Feedback`), as keyword arguments of `self_attention`."""


def attention_cause(output, x, weights, num_heads, mask):
    """The known attention mistake that `output` matches, recomputed in NumPy; else None."""
    x = np.asarray(x, float)
    for cause, variation in ATTENTION_CAUSES:
        if is_close(output, self_attention(x, weights, num_heads, **{"mask": mask, **variation})):
            return cause
    return None
