"""The grader catches each classic mistake with the right hint, and accepts other correct ways.

Every variant is a small patch of the solutions (``(old, new)`` text replacements), graded
only by the check that must catch it.
"""

import pytest

from test_grader import grade, submission

ATTENTION_SCORES = "scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(depth)"
CAUSAL_RULE = "return key_positions <= query_positions"
PRE_LN = (
    "        x = x + self.attention(self.norm1(x), attention_mask)\n"
    "        return x + self.ffn_out(self.ffn_in(self.norm2(x)))\n"
)

MISTAKES = {
    # name: (file, [(old, new)], the check that must fail, a fragment of its hint)
    "no 1/sqrt(d) scaling": (
        "attention.py", [(ATTENTION_SCORES, "scores = ops.matmul(query, ops.swapaxes(key, -1, -2))")],
        "test_attention_matches_reference", "not scaled"),
    "softmax over the wrong axis": (
        "attention.py", [("weights = ops.softmax(scores, axis=-1)", "weights = ops.softmax(scores, axis=-2)")],
        "test_attention_matches_reference", "softmax runs over the queries"),
    "mask applied after softmax": (
        "attention.py", [("    if mask is not None:\n        scores = apply_mask(scores, mask)\n"
                          "    weights = ops.softmax(scores, axis=-1)\n",
                          "    weights = ops.softmax(scores, axis=-1)\n"
                          "    if mask is not None:\n        weights = apply_mask(weights, mask)\n")],
        "test_attention_masked_keys_get_zero_weight", "masked after the softmax"),
    "transposed (upper-triangular) mask": (
        "masking.py", [(CAUSAL_RULE, "return key_positions >= query_positions")], "test_causal_mask", "upper-triangular"),
    "diagonal masked out": (
        "masking.py", [(CAUSAL_RULE, "return key_positions < query_positions")], "test_causal_mask", "diagonal is masked out"),
    "-1e9 fill in float16": (
        "masking.py", [("large_negative = 0.5 * float(np.finfo(dtype).min)", "large_negative = -1e9")],
        "test_apply_mask_float16", "overflowed to -inf/NaN in float16"),
    "sin and cos swapped": (
        "positional_embedding.py", [("[ops.sin(angles), ops.cos(angles)]", "[ops.cos(angles), ops.sin(angles)]")],
        "test_sinusoidal_follows_the_formula", "swapped"),
    "exponent i instead of 2i": (
        "positional_embedding.py", [("ops.power(10000.0, even_columns / dim)", "ops.power(10000.0, even_columns / 2 / dim)")],
        "test_sinusoidal_follows_the_formula", "uses i where the formula has 2i"),
    "missing residual": (
        "model.py", [("x = x + self.attention(self.norm1(x), attention_mask)", "x = self.attention(self.norm1(x), attention_mask)")],
        "test_block_matches_reference", "residual connection around the attention is missing"),
    "post-LN instead of pre-LN": (
        "model.py", [(PRE_LN, "        x = self.norm1(x + self.attention(x, attention_mask))\n"
                              "        return self.norm2(x + self.ffn_out(self.ffn_in(x)))\n")],
        "test_block_matches_reference", "post-LN"),
    "no final LayerNorm": (
        "model.py", [("return self.lm_head(self.final_norm(x))", "return self.lm_head(x)")],
        "test_gpt_matches_reference", "final LayerNorm is missing"),
    "model without the causal mask": (
        "model.py", [("x = block(x, mask)", "x = block(x)")], "test_gpt_is_causal", "your mask lets positions see the future"),
    "heads split without a transpose": (
        "attention.py", [("    x = ops.reshape(x, (-1, length, num_heads, channels // num_heads))\n"
                          "    return ops.transpose(x, (0, 2, 1, 3))\n",
                          "    return ops.reshape(x, (-1, num_heads, length, channels // num_heads))\n")],
        "test_split_heads", "cuts up the sequence"),
    "tanh-approximate GELU": (
        "model.py", [('self.ffn_in = keras.layers.Dense(ff_dim, activation="gelu")',
                      "self.ffn_in = keras.layers.Dense(ff_dim, activation=ops.gelu)")],
        "test_block_matches_reference", "ffn_in differs — exact GELU expected"),
    # minbpe's BasicTokenizer trains on the whole text, without pre-tokens (github.com/karpathy/minbpe, basic.py)
    "merges across pre-tokens": (
        "tokenizer.py", [("collections.Counter(pretokenize(text)).items()", "collections.Counter([text]).items()")],
        "test_merges_match_reference", "span two pre-tokens"),
    # minbpe-style `max(stats, key=stats.get)` keeps the first pair counted among ties
    # (github.com/chinthasaicharan/tinybpe, tokenizer.py); here: the smaller pair
    "the other tie rule": (
        "tokenizer.py", [("best = max(pair for pair, count in counts.items() if count == highest)",
                          "best = min(pair for pair, count in counts.items() if count == highest)")],
        "test_merges_match_reference", "tied with"),
    "merges applied left to right": (
        "tokenizer.py", [("pair = min(zip(ids, ids[1:]), key=lambda pair: self.ranks.get(pair, len(self.ranks)))",
                          "pair = next((pair for pair in zip(ids, ids[1:]) if pair in self.ranks), None)")],
        "test_encode_applies_merges_by_rank", "not the first known pair from the left"),
    "decoded token by token": (
        "tokenizer.py", [('return b"".join(self.bytes_of[int(i)] for i in ids).decode("utf-8", errors="replace")',
                          'return "".join(self.bytes_of[int(i)].decode("utf-8", errors="replace") for i in ids)')],
        "test_round_trip_of_any_text", "decoding token by token"),
    "unshifted targets": (
        "training.py", [('logits = ops.cast(logits, "float32")[:, :-1]', 'logits = ops.cast(logits, "float32")'),
                        ('targets = ops.cast(token_ids, "int32")[:, 1:]', 'targets = ops.cast(token_ids, "int32")')],
        "test_loss_is_next_token", "against its own input token"),
    "loss averaged over padding": (
        "training.py", [("return ops.sum(losses * real) / ops.maximum(ops.sum(real), 1.0)",
                         "return ops.mean(losses * real)")],
        "test_loss_matches_reference", "averaged over the padding"),
    # github.com/nguyenbui45/Deep-learning-summary, codes/crossentropy.py: torch.log of the softmax's probabilities
    "log of the softmax": (
        "training.py", [("    shifted = logits - ops.max(logits, axis=-1, keepdims=True)\n"
                         "    log_probabilities = shifted - ops.log(ops.sum(ops.exp(shifted), axis=-1, keepdims=True))\n",
                         "    log_probabilities = ops.log(ops.softmax(logits, axis=-1))\n")],
        "test_loss_stays_finite_for_large_logits", "log(0) = -inf"),
    "loss in float16": (
        "training.py", [('logits = ops.cast(logits, "float32")[:, :-1]', "logits = logits[:, :-1]")],
        "test_loss_is_float32_under_mixed_precision", "cast the logits to float32 first"),
    # build-nanogpt's get_lr: max_lr * (it+1) / warmup_steps (github.com/karpathy/build-nanogpt, train_gpt2.py)
    "warm-up off by one": (
        "training.py", [("warming_up = peak * step / max(self.warmup_steps, 1)",
                         "warming_up = peak * (step + 1) / max(self.warmup_steps, 1)")],
        "test_schedule_matches_reference", "off by one"),
    "cosine short of its floor": (
        "training.py", [("(step - self.warmup_steps) / (self.total_steps - self.warmup_steps)",
                         "(step - self.warmup_steps) / self.total_steps")],
        "test_schedule_matches_reference", "does not reach its floor"),
    "Keras' default LayerNorm epsilon": (
        "model.py", [("self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)",
                      "self.norm2 = keras.layers.LayerNormalization()")],
        "test_block_sublayers", "expected LayerNormalization(epsilon=1e-5)"),
}


def graded_check(tmp_path, mistake, check, exercise):
    """The one result of the checks matching `check` (``-k``), on the solutions with `mistake` made."""
    file, patches, _, _ = MISTAKES[mistake]
    report = grade(tmp_path, "--submission", str(submission(tmp_path, {file: patches})), "-k", check,
                   exercises=[exercise])
    [result] = report["exercises"][exercise]["tests"]
    return result


@pytest.mark.parametrize("mistake", MISTAKES)
def test_classic_mistake_fails_its_check_with_its_hint(mistake, tmp_path):
    file, _, check, hint = MISTAKES[mistake]
    result = graded_check(tmp_path, mistake, check, file.removesuffix(".py"))
    assert (result["name"], result["points"]) == (check, 0)
    assert hint in result["message"]


def test_the_masked_attention_check_names_unscaled_scores_too(tmp_path):
    result = graded_check(tmp_path, "no 1/sqrt(d) scaling", "masked_keys", "attention")
    assert result["points"] == 0
    assert "the scores are not scaled" in result["message"]


DIAGNOSES = {
    # mistake: what the GPT check reports, from comparing each sublayer on the reference's inputs
    "tanh-approximate GELU": 'blocks.0: norm1, attention and norm2 match; ffn_in differs — exact GELU expected '
                             '(activation="gelu"); yours matches the tanh approximation',
    "Keras' default LayerNorm epsilon": "blocks.0: norm1 and attention match; norm2 differs — "
                                        "LayerNormalization(epsilon=1e-5) expected; yours matches Keras' default",
    "no 1/sqrt(d) scaling": "blocks.0: norm1 matches; attention differs — the scores are not scaled",
    "heads split without a transpose": "blocks.0: norm1 matches; attention differs — the heads are split or merged by a bare reshape",
    "post-LN instead of pre-LN": "post-LN",
    "missing residual": "residual connection around the attention is missing",
}


@pytest.mark.parametrize("mistake", DIAGNOSES)
def test_the_gpt_check_names_the_first_sublayer_that_differs_and_why(mistake, tmp_path):
    result = graded_check(tmp_path, mistake, "gpt_matches_reference", "model")
    assert result["points"] == 0
    assert DIAGNOSES[mistake] in result["message"]


def test_reversal_check_catches_a_model_that_looks_ahead(tmp_path):
    result = graded_check(tmp_path, "model without the causal mask", "reversal", "model")
    assert result["points"] == 0
    assert "it is looking at the future" in result["message"]


PRECOMPUTED_TABLE = """import numpy as np


def sinusoidal_position_encoding(length, dim):
    table = np.zeros((length, dim), "float32")
    for position in range(length):
        for column in range(dim):
            angle = position / 10000 ** ((column - column % 2) / dim)
            table[position, column] = np.sin(angle) if column % 2 == 0 else np.cos(angle)
    return ops.convert_to_tensor(table)


"""

ALTERNATIVES = {
    "attention.py": [  # einsum instead of matmul
        (ATTENTION_SCORES, 'scores = ops.einsum("...qd,...kd->...qk", query, key) / ops.sqrt(depth)'),
        ("return ops.matmul(weights, value), weights", 'return ops.einsum("...qk,...kv->...qv", weights, value), weights'),
    ],
    "masking.py": [  # ops.where instead of an additive mask
        ("    forbidden = ops.cast(ops.logical_not(mask), dtype)\n    return scores + forbidden * large_negative\n",
         "    return ops.where(mask, scores, ops.cast(large_negative, dtype))\n"),
    ],
    "positional_embedding.py": [  # a table precomputed with NumPy loops; the original is renamed away
        ("def sinusoidal_position_encoding(length, dim):", PRECOMPUTED_TABLE + "def vectorised_encoding(length, dim):"),
    ],
}


def test_correct_alternatives_score_full_marks(tmp_path):
    folder = submission(tmp_path, ALTERNATIVES)
    report = grade(tmp_path, "--submission", str(folder), exercises=["positional_embedding", "masking", "attention"])
    assert {name: result["points"] for name, result in report["exercises"].items()} == {
        "positional_embedding": 20, "masking": 20, "attention": 30}


NEW_ALTERNATIVES = {
    "tokenizer.py": [  # the lesson's tie rule as written; merges found by rank among the pairs present; a bytearray
        ("        highest = max(counts.values())\n"
         "        best = max(pair for pair, count in counts.items() if count == highest)  # the tie rule\n",
         "        best = max(counts, key=lambda pair: (counts[pair], pair))\n"),
        ("        while len(ids) > 1:\n"
         "            pair = min(zip(ids, ids[1:]), key=lambda pair: self.ranks.get(pair, len(self.ranks)))\n"
         "            if pair not in self.ranks:\n"
         "                break\n",
         "        while True:\n"
         "            known = [pair for pair in zip(ids, ids[1:]) if pair in self.ranks]\n"
         "            if not known:\n"
         "                break\n"
         "            pair = min(known, key=self.ranks.get)\n"),
        ('return b"".join(self.bytes_of[int(i)] for i in ids).decode("utf-8", errors="replace")',
         'joined = bytearray()\n        for i in ids:\n            joined += self.bytes_of[int(i)]\n'
         '        return joined.decode("utf-8", errors="replace")'),
    ],
    "training.py": [  # Keras' log-softmax and a one-hot pick; the cosine's progress clipped with minimum/maximum
        ("    shifted = logits - ops.max(logits, axis=-1, keepdims=True)\n"
         "    log_probabilities = shifted - ops.log(ops.sum(ops.exp(shifted), axis=-1, keepdims=True))\n"
         "    losses = -ops.take_along_axis(log_probabilities, targets[..., None], axis=-1)[..., 0]\n",
         "    log_probabilities = ops.log_softmax(logits, axis=-1)\n"
         "    losses = -ops.sum(log_probabilities * ops.one_hot(targets, ops.shape(logits)[-1]), axis=-1)\n"),
        ("progress = ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0.0, 1.0)",
         "progress = ops.minimum(ops.maximum(step - self.warmup_steps, 0.0) / "
         "(self.total_steps - self.warmup_steps), 1.0)"),
    ],
}


def test_correct_alternatives_of_tokenizer_and_training_score_full_marks(tmp_path):
    folder = submission(tmp_path, NEW_ALTERNATIVES)
    report = grade(tmp_path, "--submission", str(folder), exercises=["tokenizer", "training"])
    assert {name: result["points"] for name, result in report["exercises"].items()} == {"tokenizer": 20, "training": 20}
