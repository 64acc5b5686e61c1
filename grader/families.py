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
    >>> closest_mistake(~np.eye(2, dtype=bool), expected, "mask", {"inverted": Feedback(cause="your mask is inverted")})
    Feedback(where=None, cause='your mask is inverted', fix=None)
"""

import itertools

import numpy as np

from grader.checks import TOLERANCES
from grader.feedback import Feedback
from grader.layout import FFN_ACTIVATION, LAYER_NORM_EPSILON
from grader.reference import Digest


def fingerprint_key(output, family):
    """Where a case keeps the fingerprint of `family` for its output `output`."""
    return f"{output}~{family}"


def closest_mistake(actual, expected, output, families, dtype="float32", **details):
    """The `Feedback` of the family whose fingerprint of `output` is closest to `actual`, if one matches.

    Args:
        actual: the student's output (a NumPy array).
        expected: the case's expected outputs, fingerprints included.
        families: ``{family: Feedback}``; its cause and fix may name `details` (``{head_size}``).
    """
    best, best_distance = None, 1.0
    for family, message in families.items():
        fingerprint = expected.get(fingerprint_key(output, family))
        if fingerprint is not None:
            distance = mismatch(actual, fingerprint, dtype)
            if distance <= best_distance:
                best, best_distance = message, distance
    if best is None:
        return None
    return Feedback(best.where, *(part and part.format(**details) for part in (best.cause, best.fix)))


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


def mistake(cause, fix=None):
    """A family's feedback: why the output differs, and what to do."""
    return Feedback(cause=cause, fix=fix)


CAUSAL_MASK = {
    "transposed": mistake("your mask is upper-triangular (the transposed mask)",
                          "True must mean key position <= query position (rows are queries, columns are keys)"),
    "strict": mistake("the diagonal is masked out",
                      "a position must be allowed to attend to itself (key position <= query position, not <)"),
    "inverted": mistake("your mask is inverted", "True must mean 'may attend' (the past and the position itself)"),
    "everything": mistake("your mask lets every position attend to every other",
                          "mask the future: True only where key position <= query position"),
}

PADDING_MASK = {
    "inverted": mistake("your padding mask is inverted", "True must mean 'a real token' (not padding)"),
    "pad_id_ignored": mistake("padding_mask marks the tokens equal to 0, whatever pad_id it is given",
                              "compare the ids with pad_id"),
}

SINUSOID = {
    "swapped": mistake("sine and cosine are swapped", "sin goes in the even columns 2i, cos in the odd columns 2i+1"),
    "half": mistake("the exponent uses i where the formula has 2i",
                    "10000 ** (2i / dim), with 2i the even column index"),
    "concatenated": mistake("sines and cosines are concatenated (all sines, then all cosines)",
                            "the formula interleaves them: sin in column 2i, cos in column 2i+1"),
    "column": mistake("every column has its own exponent (column c uses 10000 ** (c / dim))",
                      "the exponent belongs to the pair: columns 2i and 2i+1 both use 10000 ** (2i / dim)"),
    "twice_column": mistake("the exponent is 2c / dim with c the column index",
                            "in the formula 2i is the even column index itself: columns 2i and 2i+1 both use "
                            "10000 ** (2i / dim)"),
    "base": mistake("the base of the power is 1000", "the formula's is 10000: p / 10000 ** (2i / dim)"),
    "unparenthesised": mistake("the exponent's parentheses are missing (p / 10000 ** 2i / dim)",
                               "the formula is p / 10000 ** (2i / dim)"),
    "from_one": mistake("the positions start at 1", "row p of the table is position p, from 0"),
}

EMBEDDING = {
    "no_positions": mistake("the output is the token embedding alone",
                            "add position_embedding(positions 0..T-1)"),
    "positions_only": mistake("the output is the position embedding alone", "add token_embedding(token_ids)"),
    "positions_from_one": mistake("the positions start at 1", "position_embedding looks up positions 0..T-1"),
    "positions_of_token_ids": mistake("position_embedding is looked up with the token ids",
                                      "it takes the positions 0..T-1"),
    "scaled_tokens": mistake("the token embedding is multiplied by sqrt(embed_dim)",
                             "this exercise adds the two embeddings as they are"),
}

HEADS_FORWARD = "reshape (B, T, C) to (B, T, H, C/H) and move the head axis forward (and back before merging)"
BARE_RESHAPE = mistake("the heads are split or merged by a bare reshape", HEADS_FORWARD)
STRIDED_HEADS = mistake("the heads take every H-th channel (through (B, T, C/H, H) or (B, T, D, H))",
                        f"head h owns the C/H channels in a row from h * C/H: {HEADS_FORWARD}")

SPLIT_HEADS = {
    "bare": mistake("you reshaped straight to (B, H, T, C/H), which cuts up the sequence instead of the channels",
                    "reshape to (B, T, H, C/H), then move the head axis forward"),
    "strided": mistake("you reshaped to (B, T, C/H, H), which gives each head every H-th channel",
                       "reshape to (B, T, H, C/H), then move the head axis forward"),
}

MERGE_HEADS = {
    "bare": mistake("you reshaped without moving the head axis back first", "transpose to (B, T, H, D), then reshape"),
    "strided": mistake("you moved the head axis last, (B, T, D, H), which interleaves the heads' channels",
                       "transpose to (B, T, H, D), then reshape"),
}


def _projection_mistake(sources):
    wrong = [f"the {role} by {source}_dense, not {role}_dense" for role, source in zip(("query", "key", "value"), sources)
             if role != source]
    return mistake(f"your attention makes {'; '.join(wrong)}",
                   "query = query_dense(x), key = key_dense(x), value = value_dense(x)")


PROJECTION_FAMILIES = {
    "projections_" + "_".join(sources): _projection_mistake(sources)
    for sources in itertools.product(("query", "key", "value"), repeat=3) if sources != ("query", "key", "value")
}
"""Every way of making Q, K and V with the wrong dense layers: swapped, or one used twice or thrice."""

SQRT_HEAD_SIZE = "scale them by 1/sqrt(head size) = 1/sqrt({head_size}) before the softmax"

SELF_ATTENTION = {
    "scale_none": mistake("the scores are not scaled", SQRT_HEAD_SIZE),
    "scale_sqrt_width": mistake("the scores are scaled by 1/sqrt(C), C the model width", SQRT_HEAD_SIZE),
    "scale_head_size": mistake("the scores are scaled by 1/(head size), without the square root", SQRT_HEAD_SIZE),
    "scale_width": mistake("the scores are scaled by 1/C, C the model width", SQRT_HEAD_SIZE),
    "scale_sqrt_heads": mistake("the scores are scaled by 1/sqrt(H), H the number of heads", SQRT_HEAD_SIZE),
    "scale_times_sqrt_head_size": mistake("the scores are scaled by sqrt(head size), not 1/sqrt(head size)",
                                          SQRT_HEAD_SIZE),
    **PROJECTION_FAMILIES,
    "split_bare": BARE_RESHAPE,
    "merge_bare": BARE_RESHAPE,
    "both_bare": BARE_RESHAPE,
    "split_strided": STRIDED_HEADS,
    "merge_strided": STRIDED_HEADS,
    "both_strided": STRIDED_HEADS,
    "no_output_projection": mistake("output_dense is not applied", "the merged heads go through output_dense"),
    "softmax_over_queries": mistake("the softmax runs over the queries", "it must run over the keys (the last axis)"),
}
"""The mistakes of `MultiHeadSelfAttention` called without a mask."""

MASKED_SELF_ATTENTION = {
    **SELF_ATTENTION,
    "mask_ignored": mistake("the mask makes no difference", "pass attention_mask on to the attention"),
    "mask_inverted": mistake("the mask is inverted inside the attention",
                             "True means 'may attend': replace the scores where it is False"),
}
"""The mistakes of `MultiHeadSelfAttention` called with a mask."""

LAYER_NORM = {
    "epsilon": mistake("yours matches Keras' default epsilon=1e-3",
                       f"LayerNormalization(epsilon={LAYER_NORM_EPSILON}) expected"),
}

FFN_IN = {
    activation: mistake(f"yours matches {name}", f'exact GELU expected (activation="{FFN_ACTIVATION}")')
    for activation, name in (("tanh", "the tanh approximation"), ("relu", "ReLU"), ("linear", "no activation"))
}

SUBLAYERS = {"embedding": EMBEDDING, "norm1": LAYER_NORM, "norm2": LAYER_NORM, "final_norm": LAYER_NORM,
             "attention": MASKED_SELF_ATTENTION, "ffn_in": FFN_IN}
"""``{sublayer name: families}``: the mistakes a sublayer of a block or GPT is fitted to."""

PRE_LN = "x = x + attention(norm1(x), attention_mask), then x = x + ffn_out(ffn_in(norm2(x)))"

BLOCK = {
    "post_ln": mistake("your block normalises after the residual (post-LN)", f"this exercise is pre-LN: {PRE_LN}"),
    "no_attention_residual": mistake("the residual connection around the attention is missing",
                                     "x = x + attention(norm1(x), attention_mask)"),
    "no_mlp_residual": mistake("the residual connection around the MLP is missing",
                               "x = x + ffn_out(ffn_in(norm2(x)))"),
    "mask_ignored": mistake("the mask does not reach the attention", "pass attention_mask on to self.attention"),
    "attention_residual_from_norm": mistake("the attention's residual adds norm1(x), not x (is x overwritten by "
                                            "norm1(x)?)", "x = x + attention(norm1(x), attention_mask)"),
    "mlp_residual_from_norm": mistake("the MLP's residual adds norm2(x), not x (is x overwritten by norm2(x)?)",
                                      "x = x + ffn_out(ffn_in(norm2(x)))"),
    "both_residuals_from_norm": mistake("both residuals add the normalised x, not x (is x overwritten by the norms?)",
                                        PRE_LN),
    "residual_inside": mistake("the residual is added to the attention's input (attention(norm1(x) + x)), not "
                               "around it", "x = x + attention(norm1(x), attention_mask)"),
    "norm1_twice": mistake("norm1 also normalises the MLP's input and norm2 is never used",
                           "x = x + ffn_out(ffn_in(norm2(x)))"),
    "parallel": mistake("the attention and the MLP both read the block's input",
                        f"the MLP reads x after the attention's residual: {PRE_LN}"),
}
"""How a `TransformerBlock` may wire its (correct) sublayers wrongly."""

GPT = {
    "no_final_norm": mistake("the final LayerNorm is missing", "apply final_norm after the last block, before lm_head"),
    "mask_ignored": mistake("the blocks get no causal mask", "GPT.call must pass causal_mask(T) to every block"),
    "unchained": mistake("the blocks are not chained (every block reads the embedding)",
                         "each block reads the previous block's output (x = block(x, mask))"),
    "shared_blocks": mistake("every block computes with the weights of the last one: one block object is repeated "
                             "([TransformerBlock(...)] * n)?", "make a new block for every layer"),
}
"""How a `GPT` may wire its (correct) parts wrongly."""

MERGES = {
    "across_pre_tokens": mistake("your merges join pairs that span two pre-tokens",
                                 "merges must not cross a word's edge: split the text with pretokenize first and "
                                 "count pairs inside each pre-token (lesson, section 2)"),
    "smaller_of_tied": mistake("when pairs are tied with the same count, yours merges the smaller one",
                               "the tie rule takes the greater pair, comparing the first ids, then the second ones: "
                               "max(counts, key=lambda pair: (counts[pair], pair))"),
}
"""How `train_merges` may learn other merges than the lesson's."""

UNSHIFTED = mistake("your loss scores each position against its own input token (a model that copies its "
                    "input would score perfectly under yours)",
                    "shift the targets by one: logits[:, :-1] against token_ids[:, 1:]")

LOSS = {
    "unshifted": UNSHIFTED,
    "unshifted_last_dropped": UNSHIFTED,  # the targets sliced like the logits: token_ids[:, :-1]
    "shifted_backwards": mistake("the targets are shifted the wrong way",
                                 "position t predicts token t + 1, so logits[:, :-1] go with token_ids[:, 1:]"),
    "averaged_over_padding": mistake("the loss is averaged over the padding too",
                                     "divide the sum over real targets by their number, not by all the positions"),
    "padding_scored": mistake("padding targets are not ignored",
                              "targets equal to pad_id get no loss and do not count in the mean"),
}
"""How `next_token_loss` may misread the lesson."""

WARMUP_OFF_BY_ONE = mistake("the warm-up is off by one",
                            "lr = peak * step / warmup_steps: 0 at step 0 and the peak exactly at step warmup_steps")

SCHEDULE = {
    "warmup_from_one": WARMUP_OFF_BY_ONE,
    "warmup_one_step_longer": WARMUP_OFF_BY_ONE,
    "warmup_both": WARMUP_OFF_BY_ONE,
    "cosine_over_total": mistake("the cosine does not reach its floor at total_steps",
                                 "progress = (step - warmup_steps) / (total_steps - warmup_steps)"),
    "floor_ignored": mistake("the cosine ends at 0, not at min_learning_rate",
                             "lr = floor + (peak - floor) * (1 + cos(pi * progress)) / 2"),
    "unclipped": mistake("the rate rises again after total_steps",
                         "clip the progress at 1, so the rate stays at its floor"),
}
"""How `WarmupCosine` may misread the lesson."""
