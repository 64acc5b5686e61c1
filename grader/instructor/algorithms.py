"""The exercises' computations in NumPy (float64), each with a knob for every known mistake.

With its knobs left alone a function computes what the lessons ask; a knob set otherwise
computes one known mistake: ``self_attention(x, weights, 3, scale="sqrt_width")`` divides the
scores by sqrt(C) instead of sqrt(C / H). Weights are ``{sublayer path: [arrays]}`` as
`grader.layout.random_weights` draws them, the paths relative to the layer computed.

Example::

    >>> sinusoid(3, 2)[:, 0].round(3).tolist()  # column 0: sin(p)
    [0.0, 0.841, 0.909]
    >>> sinusoid(3, 2, sine_first=False)[:, 0].tolist()  # the mistake: cos(p)
    [1.0, 0.5403023058681398, -0.4161468365471424]
"""

import collections
import math
from types import SimpleNamespace

import numpy as np

MASKED_SCORE = -1e30
"""What a masked score becomes: no real score comes near it, and it stays finite."""


def sublayer_weights(weights, prefix):
    """The entries of `weights` under ``prefix.``, with the prefix taken off."""
    return {path[len(prefix) + 1:]: arrays for path, arrays in weights.items() if path.startswith(f"{prefix}.")}


def dense(x, weights):
    """Keras' Dense: ``x @ kernel (+ bias)``."""
    kernel, *bias = weights
    return np.asarray(x, float) @ kernel + (bias[0] if bias else 0)


def layer_norm(x, weights, epsilon=1e-5):
    """Keras' LayerNormalization over the last axis."""
    gamma, beta = weights
    x = np.asarray(x, float)
    mean, variance = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


ACTIVATIONS = {
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2))),
    "tanh": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "relu": lambda x: np.maximum(x, 0),
    "linear": lambda x: x,
}
"""The exact GELU the lessons ask for, and what ``ffn_in`` may compute instead."""


def softmax(x, axis=-1):
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def causal_mask(length):
    """``(T, T)``, True where key position <= query position."""
    return np.tril(np.ones((length, length), bool))


def padding_mask(token_ids, pad_id):
    """``(B, 1, 1, T)``, True on real tokens."""
    return (np.asarray(token_ids) != pad_id)[:, None, None, :]


EXPONENTS = {
    "pair": lambda column, dim: (column - column % 2) / dim,  # the formula: 2i / dim for columns 2i and 2i + 1
    "half": lambda column, dim: column // 2 / dim,  # i / dim
    "column": lambda column, dim: column / dim,  # its own exponent for every column
    "twice_column": lambda column, dim: 2 * column / dim,  # 2c / dim with c the column index
}


def sinusoid(length, dim, exponent="pair", base=10000.0, interleaved=True, sine_first=True, first_position=0,
             parenthesised=True):
    """The sine/cosine position table ``(length, dim)``.

    `parenthesised` False computes ``p / base ** 2i / dim`` instead of ``p / base ** (2i / dim)``.
    """
    positions = np.arange(first_position, first_position + length)[:, None]
    columns = np.arange(dim)[None, :]
    if parenthesised:
        angles = positions / base ** EXPONENTS[exponent](columns, dim)
    else:
        angles = positions / base ** (columns - columns % 2) / dim
    first, second = (np.sin, np.cos) if sine_first else (np.cos, np.sin)
    if not interleaved:
        pairs = angles[:, 0::2]
        return np.concatenate([first(pairs), second(pairs)], axis=-1)[:, :dim]
    return np.where(columns % 2 == 0, first(angles), second(angles))


def angular_speeds(dim):
    """What the formula's angle grows by per position in each column: ``1 / 10000 ** (2i / dim)``."""
    columns = np.arange(dim)
    return 1 / 10000.0 ** EXPONENTS["pair"](columns, dim)


def embedding(token_ids, weights, positions="from_zero", tokens="plain"):
    """Token plus position embedding. The mistakes: `positions` ``"from_one"``, ``"token_ids"`` or
    ``"none"``; `tokens` ``"scaled"`` (by sqrt(C)) or ``"none"``. None where a mistake has no row to look up."""
    token_ids = np.asarray(token_ids)
    table = weights["position_embedding"][0]
    length = token_ids.shape[-1]
    if (positions == "from_one" and length >= len(table)) or (positions == "token_ids" and token_ids.max() >= len(table)):
        return None
    looked_up = {"from_zero": lambda: table[:length], "from_one": lambda: table[1:length + 1],
                 "token_ids": lambda: table[token_ids], "none": lambda: 0}[positions]()
    token_table = weights["token_embedding"][0]
    scale = {"plain": 1.0, "scaled": np.sqrt(token_table.shape[-1]), "none": 0.0}[tokens]
    return token_table[token_ids] * scale + looked_up


SCALES = {
    "sqrt_head_size": lambda head_size, width, heads: head_size**-0.5,
    "none": lambda head_size, width, heads: 1.0,
    "sqrt_width": lambda head_size, width, heads: width**-0.5,
    "head_size": lambda head_size, width, heads: 1 / head_size,
    "width": lambda head_size, width, heads: 1 / width,
    "sqrt_heads": lambda head_size, width, heads: heads**-0.5,
    "times_sqrt_head_size": lambda head_size, width, heads: head_size**0.5,
}
"""What the scores are multiplied by: 1/sqrt(head size), and the known slips."""


def attention(query, key, value, mask=None, factor=None, softmax_axis=-1, invert_mask=False):
    """Scaled dot-product attention: ``(output, weights)``; `factor` defaults to 1/sqrt(d)."""
    scores = query @ np.swapaxes(key, -1, -2) * (query.shape[-1] ** -0.5 if factor is None else factor)
    if mask is not None:
        scores = np.where(np.asarray(mask, bool) != invert_mask, scores, MASKED_SCORE)
    weights = softmax(scores, softmax_axis)
    return weights @ value, weights


def split_heads(x, num_heads, layout="contiguous"):
    """``(B, T, C)`` to ``(B, H, T, C/H)``; ``"bare"`` reshapes straight there, ``"strided"`` gives
    head h the channels h, h + H, h + 2H, ..."""
    batch, length, width = x.shape
    if layout == "bare":
        return x.reshape(batch, num_heads, length, width // num_heads)
    if layout == "strided":
        return x.reshape(batch, length, width // num_heads, num_heads).transpose(0, 3, 1, 2)
    return x.reshape(batch, length, num_heads, width // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x, layout="contiguous"):
    """``(B, H, T, D)`` to ``(B, T, H * D)``, and the mistakes of `split_heads`' layouts."""
    batch, heads, length, head_size = x.shape
    moved = {"contiguous": x.transpose(0, 2, 1, 3), "bare": x, "strided": x.transpose(0, 2, 3, 1)}[layout]
    return moved.reshape(batch, length, heads * head_size)


PROJECTIONS = ("query", "key", "value")


def self_attention(x, weights, num_heads, mask=None, projections=PROJECTIONS, scale="sqrt_head_size",
                   split="contiguous", merge="contiguous", output_projection=True, softmax_axis=-1,
                   invert_mask=False):
    """Multi-head self-attention; `projections` names the dense layer that makes the query, the key
    and the value (``("key", "key", "value")``: the query made with the key's weights)."""
    x = np.asarray(x, float)
    width = x.shape[-1]
    query, key, value = (split_heads(dense(x, weights[f"{source}_dense"]), num_heads, split) for source in projections)
    factor = SCALES[scale](width // num_heads, width, num_heads)
    attended, _ = attention(query, key, value, mask, factor, softmax_axis, invert_mask)
    merged = merge_heads(attended, merge)
    return dense(merged, weights["output_dense"]) if output_projection else merged


def _pre_ln(x, s):
    x = x + s.attend(s.norm1(x))
    return x + s.mlp(s.norm2(x))


def _post_ln(x, s):
    x = s.norm1(x + s.attend(x))
    return s.norm2(x + s.mlp(x))


def _no_attention_residual(x, s):
    x = s.attend(s.norm1(x))
    return x + s.mlp(s.norm2(x))


def _no_mlp_residual(x, s):
    return s.mlp(s.norm2(x + s.attend(s.norm1(x))))


def _mask_ignored(x, s):
    x = x + s.attend(s.norm1(x), None)
    return x + s.mlp(s.norm2(x))


def _attention_residual_from_norm(x, s):
    x = s.norm1(x)
    x = x + s.attend(x)
    return x + s.mlp(s.norm2(x))


def _mlp_residual_from_norm(x, s):
    x = s.norm2(x + s.attend(s.norm1(x)))
    return x + s.mlp(x)


def _both_residuals_from_norm(x, s):  # the stream overwritten by each norm
    x = s.norm1(x)
    x = x + s.attend(x)
    x = s.norm2(x)
    return x + s.mlp(x)


def _residual_inside(x, s):
    x = s.attend(s.norm1(x) + x)
    return x + s.mlp(s.norm2(x))


def _norm1_twice(x, s):
    x = x + s.attend(s.norm1(x))
    return x + s.mlp(s.norm1(x))


def _parallel(x, s):
    return x + s.attend(s.norm1(x)) + s.mlp(s.norm2(x))


WIRINGS = {
    "pre_ln": _pre_ln, "post_ln": _post_ln, "no_attention_residual": _no_attention_residual,
    "no_mlp_residual": _no_mlp_residual, "mask_ignored": _mask_ignored,
    "attention_residual_from_norm": _attention_residual_from_norm, "mlp_residual_from_norm": _mlp_residual_from_norm,
    "both_residuals_from_norm": _both_residuals_from_norm, "residual_inside": _residual_inside,
    "norm1_twice": _norm1_twice, "parallel": _parallel,
}
"""How a block connects its sublayers: the lessons' pre-LN, and the known mistakes."""


def block(x, weights, num_heads, mask, wiring="pre_ln", trace=None, prefix=""):
    """A transformer block; `trace` (a dict) gains ``"<prefix><step>>in"`` and ``">out"`` of every sublayer."""
    def step(name, compute):
        def run(value, *args):
            result = compute(value, *args)
            if trace is not None:
                trace[f"{prefix}{name}>in"], trace[f"{prefix}{name}>out"] = value, result
            return result
        return run

    attention_weights = sublayer_weights(weights, "attention")
    ffn_in = step("ffn_in", lambda h: ACTIVATIONS["gelu"](dense(h, weights["ffn_in"])))
    ffn_out = step("ffn_out", lambda h: dense(h, weights["ffn_out"]))
    sublayers = SimpleNamespace(
        norm1=step("norm1", lambda h: layer_norm(h, weights["norm1"])),
        norm2=step("norm2", lambda h: layer_norm(h, weights["norm2"])),
        attend=step("attention", lambda h, m=mask: self_attention(h, attention_weights, num_heads, m)),
        mlp=lambda h: ffn_out(ffn_in(h)),
    )
    return WIRINGS[wiring](np.asarray(x, float), sublayers)


GPT_WIRINGS = ("chained", "no_final_norm", "mask_ignored", "unchained", "shared_blocks")
"""How a GPT connects its parts: the lessons' way, and the known mistakes."""


def gpt(token_ids, weights, num_heads, num_layers, wiring="chained", trace=None):
    """A GPT's logits; `trace` gains every sublayer's input and output (``"blocks.0.norm1>in"``, ...)."""
    mask = None if wiring == "mask_ignored" else causal_mask(np.shape(token_ids)[-1])
    embedded = embedding(token_ids, sublayer_weights(weights, "embedding"))
    x = embedded
    for index in range(num_layers):
        source = num_layers - 1 if wiring == "shared_blocks" else index
        block_input = embedded if wiring == "unchained" else x
        x = block(block_input, sublayer_weights(weights, f"blocks.{source}"), num_heads, mask,
                  trace=trace, prefix=f"blocks.{index}.")
    normed = x if wiring == "no_final_norm" else layer_norm(x, weights["final_norm"])
    logits = dense(normed, weights["lm_head"])
    if trace is not None:
        trace.update({"embedding>out": embedded, "final_norm>in": x, "final_norm>out": normed,
                      "lm_head>in": normed, "lm_head>out": logits})
    return logits


def train_merges(text, num_merges, pattern, across_words=False, tie=max):
    """Byte-pair merges learnt from `text`, ``(num_merges, 2)`` int64: the most frequent pair first.

    `pattern` splits the text into pre-tokens; `across_words` counts pairs in the whole text
    instead; `tie` picks among the pairs of the highest count (the lesson's: the greatest).
    """
    steps = merge_steps(text, num_merges, pattern, across_words, tie)
    return np.asarray([best for best, _ in steps], "int64").reshape(-1, 2)


def merge_ties(text, num_merges, pattern):
    """``(num_merges, most tied, 2)`` int64: the pairs of the highest count at each merge of
    `train_merges`, padded with -1 (one pair where there was no tie)."""
    tied = [sorted(pairs) for _, pairs in merge_steps(text, num_merges, pattern)]
    width = max((len(pairs) for pairs in tied), default=1)
    return np.asarray([pairs + [(-1, -1)] * (width - len(pairs)) for pairs in tied], "int64").reshape(-1, width, 2)


def merge_steps(text, num_merges, pattern, across_words=False, tie=max):
    """``[(merge, the pairs tied at its count)]``: the merges of `train_merges`, each with its rivals."""
    words = collections.Counter([text] if across_words else pattern.findall(text))
    sequences = {word: list(word.encode("utf-8")) for word in words}
    steps = []
    for rank in range(num_merges):
        counts = collections.Counter()
        for word, ids in sequences.items():
            for pair in zip(ids, ids[1:]):
                counts[pair] += words[word]
        if not counts:
            break
        highest = max(counts.values())
        tied = [pair for pair, count in counts.items() if count == highest]
        steps.append((tie(tied), tied))
        sequences = {word: merged(ids, steps[-1][0], 256 + rank) for word, ids in sequences.items()}
    return steps


def merged(ids, pair, token):
    """`ids` with every occurrence of `pair`, left to right, replaced by `token`."""
    out, index = [], 0
    while index < len(ids):
        if tuple(ids[index:index + 2]) == pair:
            out.append(token)
            index += 2
        else:
            out.append(ids[index])
            index += 1
    return out


def next_token_loss(token_ids, logits, pad_id=None, shift=1, over_padding=False, drop_last=False):
    """The mean cross-entropy of each next token, ignoring targets equal to `pad_id`.

    `shift` 0 scores each position against its own token, -1 against the previous one;
    `drop_last` leaves the last position out (with `shift` 0: the targets sliced like the logits);
    `over_padding` divides by all the positions instead of the real targets.
    """
    logits, token_ids = np.asarray(logits, float), np.asarray(token_ids)
    if shift == 1:
        logits, targets = logits[:, :-1], token_ids[:, 1:]
    elif shift == -1:
        logits, targets = logits[:, 1:], token_ids[:, :-1]
    else:
        targets = token_ids
    if drop_last:
        logits, targets = logits[:, :-1], targets[:, :-1]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    losses = -np.take_along_axis(log_probabilities, targets[..., None], axis=-1)[..., 0]
    real = np.ones_like(losses) if pad_id is None else (targets != pad_id).astype(float)
    return np.asarray((losses * real).sum() / (real.size if over_padding else max(real.sum(), 1)))


def warmup_cosine(steps, peak, warmup_steps, total_steps, floor, warmup_shift=0, warmup_extra=0, cosine_over=None,
                  use_floor=True, clipped=True):
    """The learning rates at `steps`: a linear warm-up to `peak`, then half a cosine down to `floor`.

    The knobs make the known mistakes: the warm-up ``peak * (step + warmup_shift) / (warmup_steps
    + warmup_extra)``, the cosine spread over `cosine_over` steps, ending at 0 (`use_floor` False)
    or rising again after `total_steps` (`clipped` False).
    """
    low = floor if use_floor else 0.0
    rates = []
    for step in np.asarray(steps).tolist():
        if step < warmup_steps:
            rates.append(peak * (step + warmup_shift) / (warmup_steps + warmup_extra))
            continue
        progress = (step - warmup_steps) / (cosine_over or total_steps - warmup_steps)
        progress = min(progress, 1.0) if clipped else progress
        rates.append(low + (peak - low) * (1 + math.cos(math.pi * progress)) / 2)
    return np.asarray(rates)
