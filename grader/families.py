"""The known mistakes, family by family, and naming the one a student's output behaves like.

A *fingerprint* is what one known mistake computes on a case's inputs. The instructor's
grader computes them next to the reference (`grader.instructor.fingerprints`): live on the
run's draws, and recorded on the fixed draws for the student release. They sit among a case's
expected outputs under ``"<output>~<family>"`` (masks as digests, like every recorded mask).
This module holds only the families' names and messages: no code that computes them.

When a student's output differs from the reference, `closest_mistake` compares it with each
family's fingerprint and returns the message of the closest one that matches within the
tolerance, so a mistake is named by what the code does, whatever path it took:

    >>> expected = {"mask": np.eye(2, dtype=bool), "mask~inverted": ~np.eye(2, dtype=bool)}
    >>> closest_mistake(~np.eye(2, dtype=bool), expected, "mask", {"inverted": "your mask is inverted"})
    'your mask is inverted'
"""

import itertools

import numpy as np

from grader.checks import TOLERANCES
from grader.layout import FFN_ACTIVATION, LAYER_NORM_EPSILON
from grader.reference import Digest


def fingerprint_key(output, family):
    """Where a case keeps the fingerprint of `family` for its output `output`."""
    return f"{output}~{family}"


def closest_mistake(actual, expected, output, families, dtype="float32", **details):
    """The message of the family whose fingerprint of `output` is closest to `actual`, if one matches.

    Args:
        actual: the student's output (a NumPy array).
        expected: the case's expected outputs, fingerprints included.
        families: ``{family: message}``; a message may name `details` (``{head_size}``).
    """
    best, best_distance = None, 1.0
    for family, message in families.items():
        fingerprint = expected.get(fingerprint_key(output, family))
        if fingerprint is not None:
            distance = mismatch(actual, fingerprint, dtype)
            if distance <= best_distance:
                best, best_distance = message, distance
    return None if best is None else best.format(**details)


def mismatch(actual, expected, dtype="float32"):
    """How far `actual` is from `expected`, in tolerances of `dtype`: at most 1 is a match.

    Masks (and digests of them) either match exactly (0) or not at all (infinity).
    """
    if isinstance(expected, Digest) or not np.issubdtype(np.asarray(expected).dtype, np.floating):
        digest = expected if isinstance(expected, Digest) else Digest.of(expected)
        return 0.0 if Digest.of(actual).hexdigest == digest.hexdigest else np.inf
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    if actual.shape != expected.shape:
        return np.inf
    rtol, atol = TOLERANCES[dtype]
    with np.errstate(invalid="ignore"):
        distance = np.max(np.abs(actual - expected) / (atol + rtol * np.abs(expected)), initial=0)
    return float(distance) if np.isfinite(distance) else np.inf


CAUSAL_MASK = {
    "transposed": "your mask is upper-triangular: True must mean key position <= query position "
                  "(rows are queries, columns are keys); yours is the transposed mask",
    "strict": "the diagonal is masked out: a position must be allowed to attend to itself "
              "(key position <= query position, not <)",
    "inverted": "your mask is inverted: True must mean 'may attend' (the past and the position itself)",
    "everything": "your mask lets every position attend to every other: the future must be masked "
                  "(True only where key position <= query position)",
}

PADDING_MASK = {
    "inverted": "your padding mask is inverted: True must mean 'a real token' (not padding)",
    "pad_id_ignored": "padding_mask marks the tokens equal to 0, whatever pad_id it is given: compare with pad_id",
}

SINUSOID = {
    "swapped": "sine and cosine are swapped: sin goes in the even columns 2i, cos in the odd columns 2i+1",
    "half": "the exponent uses i where the formula has 2i: 10000 ** (2i / dim), with 2i the even column index",
    "concatenated": "sines and cosines are concatenated (all sines, then all cosines); the formula interleaves them: "
                    "sin in column 2i, cos in column 2i+1",
    "column": "every column has its own exponent (column c uses 10000 ** (c / dim)): the exponent belongs to the "
              "pair, so columns 2i and 2i+1 both use 10000 ** (2i / dim)",
    "twice_column": "the exponent is 2c / dim with c the column index: in the formula 2i is the even column index "
                    "itself, and columns 2i and 2i+1 both use 10000 ** (2i / dim)",
    "base": "the base of the power is 1000; the formula's is 10000: p / 10000 ** (2i / dim)",
    "unparenthesised": "the exponent's parentheses are missing: the formula is p / 10000 ** (2i / dim), "
                       "not p / 10000 ** 2i / dim",
    "from_one": "the positions start at 1: row p of the table is position p, from 0",
}

EMBEDDING = {
    "no_positions": "the output is the token embedding alone: add position_embedding(positions 0..T-1)",
    "positions_only": "the output is the position embedding alone: add token_embedding(token_ids)",
    "positions_from_one": "the positions start at 1: position_embedding looks up positions 0..T-1",
    "positions_of_token_ids": "position_embedding is looked up with the token ids: it takes the positions 0..T-1",
    "scaled_tokens": "the token embedding is multiplied by sqrt(embed_dim): this exercise adds the two embeddings "
                     "as they are",
}

BARE_RESHAPE = ("the heads are split or merged by a bare reshape: reshape (B, T, C) to (B, T, H, C/H) and move "
                "the head axis forward (and back before merging)")
STRIDED_HEADS = ("the heads take every H-th channel (a reshape to (B, T, C/H, H), or a merge through (B, T, D, H)): "
                 "head h owns the C/H channels in a row from h * C/H; reshape (B, T, C) to (B, T, H, C/H) and move "
                 "the head axis forward (and back before merging)")

SPLIT_HEADS = {
    "bare": "you reshaped straight to (B, H, T, C/H), which cuts up the sequence instead of the channels: "
            "reshape to (B, T, H, C/H), then move the head axis forward",
    "strided": "you reshaped to (B, T, C/H, H), which gives each head every H-th channel: "
               "reshape to (B, T, H, C/H), then move the head axis forward",
}

MERGE_HEADS = {
    "bare": "you reshaped without moving the head axis back first: transpose to (B, T, H, D), then reshape",
    "strided": "you moved the head axis last, (B, T, D, H), which interleaves the heads' channels: "
               "transpose to (B, T, H, D), then reshape",
}


def _projection_message(sources):
    wrong = [f"the {role} with {source}_dense" for role, source in zip(("query", "key", "value"), sources)
             if role != source]
    return (f"your attention computes {', '.join(wrong[:-1]) + ' and ' if len(wrong) > 1 else ''}{wrong[-1]}: "
            "query = query_dense(x), key = key_dense(x), value = value_dense(x)")


PROJECTION_FAMILIES = {
    "projections_" + "_".join(sources): _projection_message(sources)
    for sources in itertools.product(("query", "key", "value"), repeat=3) if sources != ("query", "key", "value")
}
"""Every way of making Q, K and V with the wrong dense layers: swapped, or one used twice or thrice."""

SELF_ATTENTION = {
    "scale_none": "the scores are not scaled: divide Q @ K^T by sqrt(head size) = sqrt({head_size}) "
                  "before the softmax",
    "scale_sqrt_width": "the scores are divided by sqrt(C) = sqrt({width}), the model width: divide them by "
                        "sqrt(head size) = sqrt({head_size})",
    "scale_head_size": "the scores are divided by the head size {head_size}: divide them by its square root",
    "scale_width": "the scores are divided by the model width {width}: divide them by sqrt(head size) = sqrt({head_size})",
    "scale_sqrt_heads": "the scores are divided by sqrt(number of heads) = sqrt({num_heads}): divide them by "
                        "sqrt(head size) = sqrt({head_size})",
    "scale_times_sqrt_head_size": "the scores are multiplied by sqrt(head size): divide them by it",
    **PROJECTION_FAMILIES,
    "split_bare": BARE_RESHAPE,
    "merge_bare": BARE_RESHAPE,
    "both_bare": BARE_RESHAPE,
    "split_strided": STRIDED_HEADS,
    "merge_strided": STRIDED_HEADS,
    "both_strided": STRIDED_HEADS,
    "no_output_projection": "output_dense is not applied: the merged heads go through output_dense",
    "softmax_over_queries": "the softmax runs over the queries; it must run over the keys (the last axis)",
}
"""The mistakes of `MultiHeadSelfAttention` called without a mask."""

MASKED_SELF_ATTENTION = {
    **SELF_ATTENTION,
    "mask_ignored": "the mask makes no difference: pass attention_mask on to the attention",
    "mask_inverted": "the mask is inverted inside the attention: True means 'may attend', so the scores "
                     "where it is False are the ones replaced",
}
"""The mistakes of `MultiHeadSelfAttention` called with a mask."""

LAYER_NORM = {
    "epsilon": f"LayerNormalization(epsilon={LAYER_NORM_EPSILON}) expected; yours matches Keras' default epsilon=1e-3",
}

FFN_IN = {
    activation: f'exact GELU expected (activation="{FFN_ACTIVATION}"); yours matches {name}'
    for activation, name in (("tanh", "the tanh approximation"), ("relu", "ReLU"), ("linear", "no activation"))
}

SUBLAYERS = {"embedding": EMBEDDING, "norm1": LAYER_NORM, "norm2": LAYER_NORM, "final_norm": LAYER_NORM,
             "attention": MASKED_SELF_ATTENTION, "ffn_in": FFN_IN}
"""``{sublayer name: families}``: the mistakes a sublayer of a block or GPT is fitted to."""

PRE_LN = "x = x + attention(norm1(x), attention_mask), then x = x + ffn_out(ffn_in(norm2(x)))"

BLOCK = {
    "post_ln": f"your block normalises after the residual (post-LN); this exercise is pre-LN: {PRE_LN}",
    "no_attention_residual": "the residual connection around the attention is missing: "
                             "x = x + attention(norm1(x), attention_mask)",
    "no_mlp_residual": "the residual connection around the MLP is missing: x = x + ffn_out(ffn_in(norm2(x)))",
    "mask_ignored": "the mask does not reach the attention: pass attention_mask on to self.attention",
    "attention_residual_from_norm": "the attention's residual adds norm1(x), not x (is x overwritten by norm1(x)?): "
                                    "x = x + attention(norm1(x), attention_mask)",
    "mlp_residual_from_norm": "the MLP's residual adds norm2(x), not x (is x overwritten by norm2(x)?): "
                              "x = x + ffn_out(ffn_in(norm2(x)))",
    "both_residuals_from_norm": f"both residuals add the normalised x, not x (is x overwritten by the norms?): {PRE_LN}",
    "norm1_twice": "norm1 also normalises the MLP's input and norm2 is never used: x = x + ffn_out(ffn_in(norm2(x)))",
    "parallel": f"the attention and the MLP both read the block's input; the MLP reads x after the attention's residual: "
                f"{PRE_LN}",
}
"""How a `TransformerBlock` may wire its (correct) sublayers wrongly."""

GPT = {
    "no_final_norm": "the final LayerNorm is missing: apply final_norm after the last block, before lm_head",
    "mask_ignored": "the blocks get no causal mask: GPT.call must pass causal_mask(T) to every block",
    "unchained": "the blocks are not chained: every block reads the embedding; each must read the previous "
                 "block's output (x = block(x, mask))",
    "shared_blocks": "every block computes with the weights of the last one: is one block object repeated "
                     "([TransformerBlock(...)] * n)? make a new block for every layer",
}
"""How a `GPT` may wire its (correct) parts wrongly."""
