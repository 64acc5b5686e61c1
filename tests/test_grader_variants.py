"""The grader catches each classic mistake with the right hint, and accepts other correct ways.

Every variant is a small patch of the solutions (``(old, new)`` text replacements), graded
only by the check that must catch it.
"""

import functools
import importlib
import inspect
import sys

import pytest

from grader.checks import GradingFailure
from grader.record_reference import RECORDED_SEED
from grader.reference import LiveReference, RecordedReference, check_rngs, seed_keras
from grader.submission import load_submission
from test_grader import ROOT, grade, submission

ATTENTION_SCORES = "scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(depth)"
CAUSAL_RULE = "return key_positions <= query_positions"
ATTENTION_CALL = "attended, _ = scaled_dot_product_attention(query, key, value, attention_mask)"
SINUSOID_PAIRS = "pairs = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)"
SINUSOID_PER_COLUMN = ("pairs = ops.stack([ops.sin(positions / ops.power(10000.0, {sine})), "
                       "ops.cos(positions / ops.power(10000.0, {cosine}))], axis=-1)")
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
    "Keras' default LayerNorm epsilon": (
        "model.py", [("self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)",
                      "self.norm2 = keras.layers.LayerNormalization()")],
        "test_block_sublayers", "expected LayerNormalization(epsilon=1e-5)"),
    # Graylab/DL4Proteins-notebooks#12, omihub777/ViT-CIFAR#12: scores scaled by the model width C, not the head's
    "scores scaled by the model width, inline": (
        "attention.py", [(ATTENTION_CALL, "attended, _ = scaled_dot_product_attention("
                                          "query / ops.sqrt(float(self.num_heads)), key, value, attention_mask)")],
        "test_self_attention_matches_reference", "divided by sqrt(C)"),
    # esceptico/perceiver-io#9: the scale 1/sqrt(d) divided by instead of multiplied by
    "scores multiplied by sqrt(d)": (
        "attention.py", [(ATTENTION_SCORES, "scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) * ops.sqrt(depth)")],
        "test_attention_matches_reference", "you multiplied the scores by sqrt(d)"),
    # any-LABS/anyGPT#10 (q, k, v projections mixed up): the value made with the query's weights
    "value projected by query_dense": (
        "attention.py", [("value = split_heads(self.value_dense(x), self.num_heads)",
                          "value = split_heads(self.query_dense(x), self.num_heads)")],
        "test_self_attention_matches_reference", "the value with query_dense"),
    # the same mix-up the other way: the query made with the key's weights
    "query projected by key_dense": (
        "attention.py", [("query = split_heads(self.query_dense(x), self.num_heads)",
                          "query = split_heads(self.key_dense(x), self.num_heads)")],
        "test_self_attention_matches_reference", "the query with key_dense"),
    # stevezheng23/sequence_labeling_tf#83: the output projection of multi-head attention missing
    "no output projection": (
        "attention.py", [("return self.output_dense(merge_heads(attended))", "return merge_heads(attended)")],
        "test_self_attention_matches_reference", "output_dense is not applied"),
    # jsbaan/transformer-from-scratch#6: heads merged by a reshape without the permute
    "heads merged without a transpose": (
        "attention.py", [("    x = ops.transpose(x, (0, 2, 1, 3))\n    return ops.reshape(x, (-1, length, num_heads * head_dim))",
                          "    return ops.reshape(x, (-1, length, num_heads * head_dim))")],
        "test_merge_heads", "without moving the head axis back"),
    # Kyubyong/transformer#38, SamLynnEvans/Transformer#25: the exponent 2c/dim for every column c
    "sinusoid exponent 2c per column": (
        "positional_embedding.py", [(SINUSOID_PAIRS, SINUSOID_PER_COLUMN.format(
            sine="2 * even_columns / dim", cosine="2 * (even_columns + 1) / dim"))],
        "test_sinusoidal_follows_the_formula", "the exponent is 2c / dim"),
    # maxjcohen/transformer#62: the cosine columns take their own odd index as the exponent
    "sinusoid exponent per column": (
        "positional_embedding.py", [(SINUSOID_PAIRS, SINUSOID_PER_COLUMN.format(
            sine="even_columns / dim", cosine="(even_columns + 1) / dim"))],
        "test_sinusoidal_follows_the_formula", "every column has its own exponent"),
    # maxjcohen/transformer#62: 1000 for 10000
    "sinusoid base 1000": (
        "positional_embedding.py", [("ops.power(10000.0, even_columns / dim)", "ops.power(1000.0, even_columns / dim)")],
        "test_sinusoidal_follows_the_formula", "the base of the power is 1000"),
    # zju3dv/LoFTR#41: an operator-precedence slip in the exponent
    "sinusoid exponent without parentheses": (
        "positional_embedding.py", [("ops.power(10000.0, even_columns / dim)", "ops.power(10000.0, even_columns) / dim")],
        "test_sinusoidal_follows_the_formula", "the exponent's parentheses are missing"),
    # Howuhh/faster-trajectory-transformer#3: norm_x + attn(norm_x), the residual taken after the norm
    "attention residual from the normalised x": (
        "model.py", [("x = x + self.attention(self.norm1(x), attention_mask)",
                      "x = self.norm1(x)\n        x = x + self.attention(x, attention_mask)")],
        "test_block_matches_reference", "the attention's residual adds norm1(x)"),
    # pytorch/pytorch#61165, tracel-ai/burn#1056: src = norm(src) overwrites the stream before each residual
    "stream overwritten by the norms": (
        "model.py", [(PRE_LN, "        x = self.norm1(x)\n        x = x + self.attention(x, attention_mask)\n"
                              "        x = self.norm2(x)\n        return x + self.ffn_out(self.ffn_in(x))\n")],
        "test_block_matches_reference", "both residuals add the normalised x"),
    # Atcold/NYU-DLSP20#270, simon-ging/coot-videotext#5: every layer fed the embedding, so only the last counts
    "blocks not chained": (
        "model.py", [("        x = self.embedding(token_ids)\n        for block in self.blocks:\n            x = block(x, mask)\n",
                      "        embedded = self.embedding(token_ids)\n        for block in self.blocks:\n"
                      "            x = block(embedded, mask)\n")],
        "test_gpt_matches_reference", "the blocks are not chained"),
    # linkedin/Liger-Kernel#269, zalandoresearch/pytorch-vq-vae#2: [Block(...)] * n repeats one object
    "one block object repeated": (
        "model.py", [("[TransformerBlock(embed_dim, num_heads, ff_dim) for _ in range(num_layers)]",
                      "[TransformerBlock(embed_dim, num_heads, ff_dim)] * num_layers")],
        "test_gpt_matches_reference", "every block computes with the weights of the last one"),
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


@functools.cache
def live_reference():
    """The solutions run live on the recorded draws: the recordings' seed, and the fixed one."""
    return LiveReference({exercise: module._module for exercise, module in load_submission(ROOT / "solutions").items()},
                         RECORDED_SEED)


def check_message(check, exercise, students, reference):
    """What the grader's check `check` tells `students` (None when it passes), with `reference`."""
    function = getattr(importlib.import_module(f"grader.test_{exercise}"), check)
    fixtures = {"student": students[exercise], "students": students, "rngs": check_rngs(RECORDED_SEED, check),
                "reference": functools.partial(reference.cases, exercise)}
    seed_keras(RECORDED_SEED, check)
    try:
        function(**{name: fixtures[name] for name in inspect.signature(function).parameters})
    except GradingFailure as failure:
        return str(failure)
    return None


@pytest.mark.parametrize("mistake", MISTAKES)
def test_recordings_give_a_mistake_the_message_of_the_live_reference(mistake, tmp_path, monkeypatch):
    """The student release diagnoses from recordings alone, as well as the instructor's live grader."""
    file, patches, check, hint = MISTAKES[mistake]
    exercise = file.removesuffix(".py")
    students = load_submission(submission(tmp_path, {file: patches}))
    live = check_message(check, exercise, students, live_reference())
    for name in [name for name in sys.modules if name.startswith("grader.instructor")]:
        monkeypatch.setitem(sys.modules, name, None)  # the release has no instructor code: importing it fails
    recorded = check_message(check, exercise, students, RecordedReference(ROOT / "grader" / "reference"))
    assert hint in live
    assert recorded == live


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
