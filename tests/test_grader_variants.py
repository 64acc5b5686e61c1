"""The grader catches each real mistake in its own exercise and names its cause, at every hint
level; and it accepts other correct ways.

`MISTAKES` is the table of mistakes found in public code (each entry cites where), ported to
the exercises as small patches of the solutions (``(old, new)`` text replacements). Each must
fail first at its check, with a message naming its cause. The checks run in this process
(`in_process_grading`); `test_the_hints_option_sets_how_much_a_message_gives_away` goes
through ``pytest grader`` itself.
"""

import importlib
import inspect
import sys

import keras
import pytest

from grader.checks import failure_feedback
from grader.feedback import HINT_LEVELS
from grader.record_reference import RECORDED_SEED
from grader.reference import RecordedReference
from grader.submission import load_submission
from in_process_grading import first_failure, run_check
from test_grader import ROOT, grade, submission

ANGLES = "    angles = positions / ops.power(10000.0, even_columns / dim)  # (length, ceil(dim / 2))\n"
PAIRS = "pairs = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)"
FILL = "large_negative = 0.5 * float(np.finfo(dtype).min)"
ADDITIVE_MASK = "    forbidden = ops.cast(ops.logical_not(mask), dtype)\n    return scores + forbidden * large_negative\n"
CAUSAL_RULE = "return key_positions <= query_positions"
PADDING_RULE = "return ops.not_equal(token_ids, pad_id)[:, None, None, :]"
ATTENTION_SCORES = "scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(depth)"
ATTEND = "attended, _ = scaled_dot_product_attention(query, key, value, attention_mask)"
ATTENTION_RESIDUAL = "        x = x + self.attention(self.norm1(x), attention_mask)\n"
MLP_RESIDUAL = "        return x + self.ffn_out(self.ffn_in(self.norm2(x)))\n"
NORM1 = "self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)"
NORM2 = "self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)"
TOP_K_THRESHOLD = ("    kth_largest = ops.top_k(logits, k)[0][:, -1:]\n"
                   "    return ops.where(logits < kth_largest, float(\"-inf\"), logits)\n")
TOP_P_BEFORE = "before = ops.cumsum(descending, axis=-1) - descending"

MISTAKES = {
    # name: (file, [(old, new)], the exercise's first check to fail, a fragment of the cause it must name)
    # --- positional_embedding.py ---
    "sin and cos swapped": (  # bojone/attention#5 (cos before sin)
        "positional_embedding.py", [(PAIRS, "pairs = ops.stack([ops.cos(angles), ops.sin(angles)], axis=-1)")],
        "test_sinusoidal_follows_the_formula", "sine and cosine are swapped"),
    "exponent i instead of 2i": (  # datawhalechina/happy-llm#23 (the i of the formula read as the column pair)
        "positional_embedding.py", [("ops.power(10000.0, even_columns / dim)", "ops.power(10000.0, even_columns / 2 / dim)")],
        "test_sinusoidal_follows_the_formula", "uses i where the formula has 2i"),
    "sines and cosines concatenated": (  # tatp22/multidim-positional-encoding#20, tensorops/TransformerX#115
        "positional_embedding.py", [(PAIRS + "\n    return ops.reshape(pairs, (length, -1))[:, :dim]",
                                     "return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)[:, :dim]")],
        "test_sinusoidal_follows_the_formula", "concatenated"),
    "exponent 2 * column for every column": (  # Kyubyong/transformer#38, jadore801120/attention-is-all-you-need-pytorch#32,
        # SamLynnEvans/Transformer#25, shenweichen/DeepCTR#379
        "positional_embedding.py", [(ANGLES, "    angles = positions / ops.power(10000.0, 2 * even_columns / dim)\n"),
                                    (PAIRS, "pairs = ops.stack([ops.sin(angles), ops.cos(positions / ops.power("
                                            "10000.0, 2 * (even_columns + 1) / dim))], axis=-1)")],
        "test_sinusoidal_follows_the_formula", "exponent"),
    "cosine exponent from the odd column": (  # maxjcohen/transformer#62
        "positional_embedding.py", [(PAIRS, "pairs = ops.stack([ops.sin(angles), ops.cos(positions / ops.power("
                                            "10000.0, (even_columns + 1) / dim))], axis=-1)")],
        "test_sinusoidal_follows_the_formula", "exponent"),
    "base 1000 instead of 10000": (  # maxjcohen/transformer#62
        "positional_embedding.py", [("ops.power(10000.0, even_columns / dim)", "ops.power(1000.0, even_columns / dim)")],
        "test_sinusoidal_follows_the_formula", "base"),
    "precedence in -log(10000) / dim // 2": (  # zju3dv/LoFTR#41
        "positional_embedding.py", [(ANGLES, "    angles = positions * ops.exp(even_columns * (-9.210340371976184 / dim // 2))\n")],
        "test_sinusoidal_follows_the_formula", "exponent"),
    "integer division in the exponent": (  # Kyubyong/transformer#81
        "positional_embedding.py", [("ops.power(10000.0, even_columns / dim)", "ops.power(10000.0, even_columns // dim)")],
        "test_sinusoidal_follows_the_formula", "exponent"),
    # --- masking.py ---
    "transposed (upper-triangular) causal mask": (  # karpathy/nanoGPT#170 (tril or triu?)
        "masking.py", [(CAUSAL_RULE, "return key_positions >= query_positions")], "test_causal_mask", "upper-triangular"),
    "diagonal masked out": (  # pbloem/former#10 (triu_indices offset 0)
        "masking.py", [(CAUSAL_RULE, "return key_positions < query_positions")], "test_causal_mask", "diagonal is masked out"),
    "inverted causal mask": (  # lucidrains/halonet-pytorch#4
        "masking.py", [(CAUSAL_RULE, "return key_positions > query_positions")], "test_causal_mask", "inverted"),
    "padding mask True on the padding": (  # mlwithme/BertWithPretrained#17
        "masking.py", [(PADDING_RULE, "return ops.equal(token_ids, pad_id)[:, None, None, :]")],
        "test_padding_mask", "inverted"),
    "padding mask broadcast over the keys": (  # bentrevett/pytorch-seq2seq#96, hyunwoongko/transformer#40
        "masking.py", [(PADDING_RULE, "return ops.not_equal(token_ids, pad_id)[:, None, :, None]")],
        "test_padding_mask", "does not broadcast over the heads and the queries"),
    "padding mask without the head axis": (  # yuenoble/Machine-Translation-by-Transformer#1
        "masking.py", [(PADDING_RULE, "return ops.not_equal(token_ids, pad_id)[:, None, :]")],
        "test_padding_mask", "does not broadcast over the heads and the queries"),
    "-1e4 fill": (  # huggingface/transformers#17306, ai-glimpse/toynlp#50
        "masking.py", [(FILL, "large_negative = -1e4")], "test_apply_mask_float32", "not negative enough"),
    "-1e-9 fill": (  # Shujun-He/RibonanzaNet#5
        "masking.py", [(FILL, "large_negative = -1e-9")], "test_apply_mask_float32", "not negative enough"),
    "scores multiplied by the mask": (  # georg-wolflein/good-features#1
        "masking.py", [(ADDITIVE_MASK, "    return scores * ops.cast(mask, dtype)\n")],
        "test_apply_mask_float32", "not negative enough"),
    "masked result never used": (  # lucidrains/flamingo-pytorch#10 (masked_fill without the underscore)
        "masking.py", [(ADDITIVE_MASK, "    ops.where(mask, scores, large_negative)\n    return scores\n")],
        "test_apply_mask_float32", "the mask has no effect"),
    "True read as 'masked'": (  # lucidrains/halonet-pytorch#4
        "masking.py", [("forbidden = ops.cast(ops.logical_not(mask), dtype)", "forbidden = ops.cast(mask, dtype)")],
        "test_apply_mask_float32", "you masked the wrong positions"),
    "-1e9 fill in float16": (  # ahrefs/ocannl#548, facebookresearch/fairseq#3575
        "masking.py", [(FILL, "large_negative = -1e9")], "test_apply_mask_float16", "does not fit float16"),
    # --- attention.py ---
    "no 1/sqrt(d) scaling": (  # PAIR-code/tiny-transformers#71, delzac/cntkx#10
        "attention.py", [(ATTENTION_SCORES, "scores = ops.matmul(query, ops.swapaxes(key, -1, -2))")],
        "test_attention_matches_reference", "not scaled"),
    "divided by d": (  # tunz/transformer-pytorch#8 (scale 1/d_k)
        "attention.py", [(ATTENTION_SCORES, "scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / depth")],
        "test_attention_matches_reference", "divided the scores by d"),
    "multiplied by sqrt(d)": (  # esceptico/perceiver-io#9
        "attention.py", [(ATTENTION_SCORES, "scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) * ops.sqrt(depth)")],
        "test_attention_matches_reference", "you multiplied the scores by sqrt(d)"),
    "softmax over the wrong axis": (  # PetrochukM/PyTorch-NLP#2, fastnlp/fastNLP#254
        "attention.py", [("weights = ops.softmax(scores, axis=-1)", "weights = ops.softmax(scores, axis=-2)")],
        "test_attention_matches_reference", "softmax runs over the queries"),
    "keys not transposed": (  # huggingface/pytorch-openai-transformer-lm#2
        "attention.py", [(ATTENTION_SCORES, "scores = ops.matmul(query, key) / ops.sqrt(depth)")],
        "test_attention_matches_reference", "(attention.py, line 101: scores = ops.matmul(query, key)"),
    "mask applied after softmax": (  # rasbt/LLMs-from-scratch#279 (weights times the triangle)
        "attention.py", [("    if mask is not None:\n        scores = apply_mask(scores, mask)\n"
                          "    weights = ops.softmax(scores, axis=-1)\n",
                          "    weights = ops.softmax(scores, axis=-1)\n"
                          "    if mask is not None:\n        weights = apply_mask(weights, mask)\n")],
        "test_attention_masked_keys_get_zero_weight", "masked after the softmax"),
    "heads split without a transpose": (  # reczoo/FuxiCTR#30, hyunwoongko/transformer#15
        "attention.py", [("    x = ops.reshape(x, (-1, length, num_heads, channels // num_heads))\n"
                          "    return ops.transpose(x, (0, 2, 1, 3))\n",
                          "    return ops.reshape(x, (-1, num_heads, length, channels // num_heads))\n")],
        "test_split_heads", "cuts up the sequence"),
    "heads merged without a transpose": (  # jsbaan/transformer-from-scratch#6, ajhalthor/Transformer-Neural-Network#4
        "attention.py", [("    x = ops.transpose(x, (0, 2, 1, 3))\n    return ops.reshape(x, (-1, length, num_heads * head_dim))",
                          "    return ops.reshape(x, (-1, length, num_heads * head_dim))")],
        "test_merge_heads", "without moving the head axis back"),
    "one Dense for the queries and the keys": (  # acids-ircam/ddsp_pytorch#37 (one MLP serving two inputs)
        "attention.py", [("self.key_dense = keras.layers.Dense(embed_dim)", "self.key_dense = self.query_dense")],
        "test_self_attention_sublayers", "one object serves as two sublayers"),
    "scaled by the model width, inline": (  # omihub777/ViT-CIFAR#11, FareedKhan-dev/train-llm-from-scratch#3,
        # brightmart/bert_language_understanding#9
        "attention.py", [(ATTEND, "scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / "
                                  "ops.sqrt(ops.cast(ops.shape(x)[-1], x.dtype))\n"
                                  "        if attention_mask is not None:\n"
                                  "            scores = apply_mask(scores, attention_mask)\n"
                                  "        attended = ops.matmul(ops.softmax(scores, axis=-1), value)")],
        "test_self_attention_matches_reference", "scale"),
    "values from the key projection": (  # yflyzhang/AnnotatedTransformer#1
        "attention.py", [("value = split_heads(self.value_dense(x), self.num_heads)",
                          "value = split_heads(self.key_dense(x), self.num_heads)")],
        "test_self_attention_matches_reference", "value_dense"),
    "no output projection": (  # stevezheng23/sequence_labeling_tf#83 (multi-head attention without its projection)
        "attention.py", [("return self.output_dense(merge_heads(attended))", "return merge_heads(attended)")],
        "test_self_attention_matches_reference", "output_dense is not applied"),
    "mask not passed on to the attention": (  # facebookresearch/fairseq#1682
        "attention.py", [(ATTEND, "attended, _ = scaled_dot_product_attention(query, key, value)")],
        "test_self_attention_with_mask", "the mask makes no difference"),
    # --- model.py ---
    "Keras' default LayerNorm epsilon": (  # gzuidhof/nn-transfer#3 (Keras 1e-3, PyTorch 1e-5)
        "model.py", [(NORM2, "self.norm2 = keras.layers.LayerNormalization()")],
        "test_block_sublayers", "epsilon=0.001"),
    "ReLU instead of GELU": (  # PaddlePaddle/PaddleNLP#1048
        "model.py", [('self.ffn_in = keras.layers.Dense(ff_dim, activation="gelu")',
                      'self.ffn_in = keras.layers.Dense(ff_dim, activation="relu")')], "test_block_sublayers", "its activation is relu"),
    "one LayerNorm for both sublayers": (  # allenai/OLMo#222
        "model.py", [(NORM2, "self.norm2 = self.norm1")], "test_block_sublayers", "one object serves as two sublayers"),
    "LayerNorm over (T, C)": (  # reczoo/FuxiCTR#23, Qualcomm-AI-research/geometric-algebra-transformer#8
        "model.py", [(NORM1, "self.norm1 = keras.layers.LayerNormalization(axis=[-2, -1], epsilon=1e-5)")],
        "test_block_sublayers", "normalises over more than each position's features"),
    "missing residual": (  # NVIDIA-NeMo/Speech#4350 (the residual path of a block rewired)
        "model.py", [("x = x + self.attention(self.norm1(x), attention_mask)", "x = self.attention(self.norm1(x), attention_mask)")],
        "test_block_matches_reference", "residual connection around the attention is missing"),
    "post-LN instead of pre-LN": (  # SHI-Labs/Compact-Transformers#25
        "model.py", [(ATTENTION_RESIDUAL + MLP_RESIDUAL, "        x = self.norm1(x + self.attention(x, attention_mask))\n"
                                                         "        return self.norm2(x + self.ffn_out(self.ffn_in(x)))\n")],
        "test_block_matches_reference", "post-LN"),
    "post-LN around the attention only": (  # SHI-Labs/Compact-Transformers#25, facebookresearch/multimodal#317
        "model.py", [(ATTENTION_RESIDUAL, "        x = self.norm1(x + self.attention(x, attention_mask))\n")],
        "test_block_matches_reference", "the sublayers are connected otherwise"),
    "tanh-approximate GELU": (  # kyutai-labs/pocket-tts#278, CyberZHG/keras-bert#129
        "model.py", [('self.ffn_in = keras.layers.Dense(ff_dim, activation="gelu")',
                      "self.ffn_in = keras.layers.Dense(ff_dim, activation=ops.gelu)")],
        "test_block_matches_reference", "tanh approximation"),
    "mask not passed on by the block": (  # facebookresearch/fairseq#1682
        "model.py", [("self.attention(self.norm1(x), attention_mask)", "self.attention(self.norm1(x))")],
        "test_block_matches_reference", "the mask does not reach the attention"),
    "residual from the normalised x": (  # Howuhh/faster-trajectory-transformer#3, pytorch/pytorch#61165
        "model.py", [(ATTENTION_RESIDUAL, "        x = self.norm1(x)\n        x = x + self.attention(x, attention_mask)\n")],
        "test_block_matches_reference", "residual"),
    "stream overwritten by the second norm": (  # tracel-ai/burn#1056
        "model.py", [(MLP_RESIDUAL, "        x = self.norm2(x)\n        return x + self.ffn_out(self.ffn_in(x))\n")],
        "test_block_matches_reference", "residual"),
    "residual inside the sublayer": (  # probml/pml-book#709 (attn(LN(x) + x))
        "model.py", [("x = x + self.attention(self.norm1(x), attention_mask)",
                      "x = self.attention(self.norm1(x) + x, attention_mask)")],
        "test_block_matches_reference", "residual"),
    "stream overwritten by both norms": (  # pytorch/pytorch#61165 (src = norm1(src) before each residual)
        "model.py", [(ATTENTION_RESIDUAL + MLP_RESIDUAL, "        x = self.norm1(x)\n"
                                                         "        x = x + self.attention(x, attention_mask)\n"
                                                         "        x = self.norm2(x)\n"
                                                         "        return x + self.ffn_out(self.ffn_in(x))\n")],
        "test_block_matches_reference", "both residuals add the normalised x"),
    "one block object repeated": (  # zalandoresearch/pytorch-vq-vae#2, deep-learning-with-pytorch/dlwpt-code#89,
        # linkedin/Liger-Kernel#269
        "model.py", [("[TransformerBlock(embed_dim, num_heads, ff_dim) for _ in range(num_layers)]",
                      "[TransformerBlock(embed_dim, num_heads, ff_dim)] * num_layers")],
        "test_gpt_sublayers", "[block] * n repeats one block"),
    "no final LayerNorm": (  # vllm-project/speculators#313
        "model.py", [("return self.lm_head(self.final_norm(x))", "return self.lm_head(x)")],
        "test_gpt_matches_reference", "final LayerNorm is missing"),
    "model without the causal mask": (  # jingyaogong/minimind-v#76 (no attention mask in the forward pass)
        "model.py", [("x = block(x, mask)", "x = block(x)")], "test_gpt_matches_reference", "the blocks get no causal mask"),
    "blocks not chained": (  # utkuozbulak/pytorch-cnn-visualizations#1 (x = layer(x) in a loop)
        "model.py", [("x = block(x, mask)", "hidden = block(x, mask)"),
                     ("return self.lm_head(self.final_norm(x))", "return self.lm_head(self.final_norm(hidden))")],
        "test_gpt_matches_reference", "chain"),
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
    # karpathy/minbpe (basic.py): `max(stats, key=stats.get)`, like `Counter.most_common(1)`, keeps the pair counted first
    "the first pair counted among ties": (
        "tokenizer.py", [("best = max(pair for pair, count in counts.items() if count == highest)",
                          "best = max(counts, key=counts.get)")],
        "test_merges_match_reference", "your tie rule picks another of the pairs tied"),
    "merges applied left to right": (
        "tokenizer.py", [("pair = min(zip(ids, ids[1:]), key=lambda pair: self.ranks.get(pair, len(self.ranks)))",
                          "pair = next((pair for pair in zip(ids, ids[1:]) if pair in self.ranks), None)")],
        "test_encode_applies_merges_by_rank", "the first known pair from the left"),
    "decoded token by token": (
        "tokenizer.py", [('return b"".join(self.bytes_of[int(i)] for i in ids).decode("utf-8", errors="replace")',
                          'return "".join(self.bytes_of[int(i)].decode("utf-8", errors="replace") for i in ids)')],
        "test_round_trip_of_any_text", "decoding token by token"),
    "unshifted targets": (
        "training.py", [('logits = ops.cast(logits, "float32")[:, :-1]', 'logits = ops.cast(logits, "float32")'),
                        ('targets = ops.cast(token_ids, "int32")[:, 1:]', 'targets = ops.cast(token_ids, "int32")')],
        "test_loss_matches_reference", "against its own input token"),
    "targets sliced like the logits": (
        "training.py", [('targets = ops.cast(token_ids, "int32")[:, 1:]', 'targets = ops.cast(token_ids, "int32")[:, :-1]')],
        "test_loss_matches_reference", "against its own input token"),
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
        "test_loss_is_float32_under_mixed_precision", "the loss is computed in float16"),
    # build-nanogpt's get_lr: max_lr * (it+1) / warmup_steps (github.com/karpathy/build-nanogpt, train_gpt2.py)
    "warm-up off by one": (
        "training.py", [("warming_up = peak * step / max(self.warmup_steps, 1)",
                         "warming_up = peak * (step + 1) / max(self.warmup_steps, 1)")],
        "test_schedule_matches_reference", "off by one"),
    "cosine short of its floor": (
        "training.py", [("(step - self.warmup_steps) / (self.total_steps - self.warmup_steps)",
                         "(step - self.warmup_steps) / self.total_steps")],
        "test_schedule_matches_reference", "does not reach its floor"),
    "temperature after the softmax": (
        "sampling.py", [("    logits = logits / temperature\n", ""),
                        ("    return ops.softmax(logits, axis=-1)\n", "    return ops.softmax(logits, axis=-1) / temperature\n")],
        "test_temperature_and_greedy", "the temperature is applied after the softmax"),
    "division by zero at temperature 0": (
        "sampling.py", [("    if temperature == 0:\n        return ops.one_hot(ops.argmax(logits, axis=-1), ops.shape(logits)[-1])\n", "")],
        "test_temperature_and_greedy", "logits / 0 divides by zero"),
    # sgl-project/sglang#33539: a PyTorch fallback kept exactly k by rank where the kernels keep the ties
    "top-k keeps exactly k when logits tie": (
        "sampling.py", [(TOP_K_THRESHOLD, "    kept = ops.sum(ops.one_hot(ops.top_k(logits, k)[1], ops.shape(logits)[-1]), axis=1)\n"
                                          "    return ops.where(kept > 0, logits, float(\"-inf\"))\n")],
        "test_top_k_keeps_ties", "the lesson's tie rule keeps every logit equal to the k-th largest"),
    "filtering after renormalising": (
        "sampling.py", [("    logits = logits / temperature\n", "    logits = logits / temperature\n    unfiltered = ops.softmax(logits, axis=-1)\n"),
                        ("    return ops.softmax(logits, axis=-1)\n", "    return ops.where(ops.isinf(logits), 0.0, unfiltered)\n")],
        "test_top_k_keeps_ties", "filtered after the softmax"),
    # rasbt/reasoning-from-scratch#164, fishaudio/fish-speech#1171: `cumsum <= top_p` drops the crossing token
    "top-p drops the token that crosses p": (
        "sampling.py", [(TOP_P_BEFORE, "before = ops.cumsum(descending, axis=-1)")],
        "test_top_p_keeps_the_token_that_crosses_p", "drops the token that crosses p"),
    # fishaudio/fish-speech#1150, Blaizzy/mlx-audio#732, huggingface/transformers#8686: top-p on the unscaled logits
    "temperature after the filters": (
        "sampling.py", [("    logits = logits / temperature\n", ""),
                        ("    return ops.softmax(logits, axis=-1)\n", "    return ops.softmax(logits / temperature, axis=-1)\n")],
        "test_top_p_keeps_the_token_that_crosses_p", "the filter does not see the logits divided by the temperature"),
    "inverse CDF counted with <": (
        "sampling.py", [("passed = cumulative <= uniform", "passed = cumulative < uniform")],
        "test_draw_token_inverts_the_cdf", "of probability 0 owns an empty interval"),
    # skyzh/tiny-llm#46: the cache offset advanced by the prompt length again after the first step
    "cache written at the wrong index": (
        "generation.py", [("ops.slice_update(self.keys, (0, 0, self.length, 0), key)", "ops.slice_update(self.keys, (0, 0, 0, 0), key)"),
                          ("ops.slice_update(self.values, (0, 0, self.length, 0), value)",
                           "ops.slice_update(self.values, (0, 0, 0, 0), value)")],
        "test_cache_update_writes_at_its_length", "the newest keys are written at slot 0, expected at slot 3"),
    "cache never read": (
        "generation.py", [("    keys, values = cache.update(key, value)\n", "    cache.update(key, value)\n    keys, values = key, value\n"),
                          ("mask = ops.arange(start + length)[None, :] <= ops.arange(start, start + length)[:, None]",
                           "mask = ops.arange(length)[None, :] <= ops.arange(length)[:, None]")],
        "test_cached_logits_match_a_full_pass", "does not read the cache"),
    "cache grows without bound": (
        "generation.py", [("self.keys = ops.slice_update(self.keys, (0, 0, self.length, 0), key)",
                           "self.keys = ops.concatenate([self.keys, key], axis=2)"),
                          ("self.values = ops.slice_update(self.values, (0, 0, self.length, 0), value)",
                           "self.values = ops.concatenate([self.values, value], axis=2)")],
        "test_cache_update_writes_at_its_length", "your cache grows without bound"),
    # huggingface/transformers#36151: passing the whole context again with a cache
    "generate feeds the whole sequence at every step": (
        "generation.py", [("logits = cached_logits(model, next_token, caches)",
                           "logits = cached_logits(model, ops.concatenate(tokens, axis=1), caches)")],
        "test_greedy_generation_with_and_without_the_cache", "the cache grows without bound"),
    # ml-explore/mlx-lm#93: GPT-2 with a cache gave new tokens the position embeddings from 0
    "cached positions start from 0": (
        "generation.py", [("positions = ops.arange(start, start + ops.shape(token_ids)[1])",
                           "positions = ops.arange(ops.shape(token_ids)[1])")],
        "test_cached_logits_match_a_full_pass", "position embeddings of positions 0, 1"),
    "GPT-2 with the exact GELU": (
        "gpt2.py", [("        block.ffn_in.activation = keras.ops.gelu  # GPT-2's tanh approximation\n", "")],
        "test_gpt2_logits_match_the_reference", "your ffn_in still uses the exact GELU"),
    "c_attn split in the wrong order": (
        "gpt2.py", [("zip((attention.query_dense, attention.key_dense, attention.value_dense)",
                     "zip((attention.key_dense, attention.query_dense, attention.value_dense)")],
        "test_gpt2_logits_match_the_reference", "the query, then the key, then the value"),
    "tied head not transposed": (
        "gpt2.py", [('model.lm_head.set_weights([arrays["wte.weight"].T])', 'model.lm_head.set_weights([arrays["wte.weight"]])')],
        "test_gpt2_logits_match_the_reference", "only the tied head is transposed"),
    "transformer. prefix kept": (
        "gpt2.py", [('key.removeprefix("transformer.")', "key")],
        "test_reads_both_checkpoint_layouts", "keeps the 'transformer.' prefix"),
    "sampler ignores the filtered distribution": (
        "sampling.py", [("    uniform = keras.random.uniform(ops.shape(probabilities)[:1], seed=seed)\n"
                         "    return draw_token(probabilities, uniform)\n",
                         "    return keras.random.categorical(ops.cast(logits, \"float32\"), 1, seed=seed)[:, 0]\n")],
        "test_sampler_draws_from_its_distribution", "does your sampler draw from next_token_distribution"),
}

def representatives(per_exercise):
    """The first `per_exercise` mistakes of each exercise file, in the table's order: the sample the
    end-to-end tests grade through every door, where grading all of them would take hours (every
    entry is graded in this process, on every backend, by the tests below)."""
    taken = {}
    return [name for name, (file, *_) in MISTAKES.items() if taken.setdefault(file, []).append(name) or
            len(taken[file]) <= per_exercise]


WAITING_ON_DIAG = set()
"""Mistakes caught but not yet named by their cause: they need the diagnosis by families of mistakes."""


def table(names=MISTAKES):
    """`names` as pytest parameters, those waiting on the diagnosis by families marked to fail.

    The whole table runs in the quick suite on PyTorch; on JAX and TensorFlow the quick suite grades
    one mistake per exercise and the slow suite the others (each backend compiles every new shape's
    programs, so the whole table takes minutes there).
    """
    waiting = pytest.mark.xfail(strict=True, reason="caught, but named by cause only with the diagnosis by families")
    sampled = set(representatives(1)) if keras.backend.backend() != "torch" else set(MISTAKES)
    return [pytest.param(name, marks=[mark for mark, applies in ((waiting, name in WAITING_ON_DIAG),
                                                                 (pytest.mark.slow, name not in sampled)) if applies])
            for name in names]


@pytest.mark.parametrize("mistake", table())
def test_a_mistake_fails_first_where_it_is_made_and_each_hint_level_gives_what_it_promises(mistake, tmp_path):
    file, patches, check, cause = MISTAKES[mistake]
    name, feedback = first_failure(submission(tmp_path, {file: patches}), file.removesuffix(".py"))
    full, named, located = (feedback.at(level) for level in HINT_LEVELS)
    assert name == check, full
    assert cause in full
    assert full.startswith(named) and named.startswith(located)
    if feedback.cause is None:  # an exception: its own message and the student's line, at every level
        assert full == located
    else:
        assert cause in named and cause not in located
        assert feedback.fix is None or feedback.fix not in named


def feedback_of(check, students, exercise, folder, against=None):
    """The `Feedback` of the grader's check `check` on `students` on the recorded draws (None when it passes)."""
    try:
        run_check(getattr(importlib.import_module(f"grader.test_{exercise}"), check), students, exercise, check,
                  RECORDED_SEED, against)
    except Exception as error:
        return failure_feedback(error, folder)
    return None


def compares_with_the_reference(mistake):
    """Whether the check that catches `mistake` compares with the reference (and so may use recordings)."""
    file, _, check, _ = MISTAKES[mistake]
    function = getattr(importlib.import_module(f"grader.test_{file.removesuffix('.py')}"), check)
    return "reference" in inspect.signature(function).parameters


@pytest.mark.parametrize("mistake", table([name for name in MISTAKES if compares_with_the_reference(name)]))
def test_the_recordings_give_a_mistake_the_message_of_the_live_reference(mistake, tmp_path, monkeypatch):
    """The student release diagnoses from recordings alone, as the instructor's live grader does."""
    file, patches, check, cause = MISTAKES[mistake]
    exercise = file.removesuffix(".py")
    folder = submission(tmp_path, {file: patches})
    students = load_submission(folder)
    live = feedback_of(check, students, exercise, folder)
    for name in [name for name in sys.modules if name.startswith("grader.instructor")]:
        monkeypatch.setitem(sys.modules, name, None)  # the release has no instructor code: importing it fails
    recorded = feedback_of(check, students, exercise, folder, RecordedReference(ROOT / "grader" / "reference"))
    assert cause in live.at("full")
    if mistake in LIVE_ONLY:  # the recording finds the mistake, and says only where
        assert recorded.cause is None and recorded.at("full") == recorded.at("locate") != live.at("full")
    else:
        assert recorded == live


LIVE_ONLY = {"the first pair counted among ties"}
"""Mistakes only the live grader names (grader/README.md says why): the recording, a digest of the
merges, cannot tell which pairs were tied at each step without giving the merges away."""


def test_the_hints_option_sets_how_much_a_message_gives_away(tmp_path):
    folder = str(submission(tmp_path, {"attention.py": MISTAKES["no 1/sqrt(d) scaling"][1]}))
    messages = {}
    for level in HINT_LEVELS:
        report = grade(tmp_path, "--submission", folder, "--hints", level, "-k", "test_attention_matches",
                       exercises=["attention"])
        [result] = report["exercises"]["attention"]["tests"]
        assert (report["hints"], result["points"]) == (level, 0)
        messages[level] = result["message"]
        assert result["advice"] == result["message"].partition(" — ")[2]  # the cause and fix, no values
    assert messages["locate"].startswith("the attention weights behave like softmax(")
    assert messages["cause"] == messages["locate"] + " — the scores are not scaled"
    assert messages["full"] == messages["cause"] + ": divide Q @ K^T by sqrt(d) before the softmax"


def test_the_readme_shows_one_mistake_at_each_hint_level_as_the_grader_gives_it(tmp_path):
    file, patches, _, _ = MISTAKES["one block object repeated"]
    _, feedback = first_failure(submission(tmp_path, {file: patches}), "model")
    shown = dict(line.split(":  ", 1) for line in (ROOT / "grader" / "README.md").read_text().splitlines()
                 if line.startswith(tuple(f"{level}:  " for level in HINT_LEVELS)))
    assert {level: message.strip() for level, message in shown.items()} == {
        level: feedback.at(level) for level in HINT_LEVELS}


def graded_check(tmp_path, mistake, check, exercise):
    """The one result of the checks matching `check` (``-k``), on the solutions with `mistake` made."""
    file, patches, _, _ = MISTAKES[mistake]
    report = grade(tmp_path, "--submission", str(submission(tmp_path, {file: patches})), "-k", check,
                   exercises=[exercise])
    [result] = report["exercises"][exercise]["tests"]
    return result


def test_the_masked_attention_check_names_unscaled_scores_too(tmp_path):
    result = graded_check(tmp_path, "no 1/sqrt(d) scaling", "masked_keys", "attention")
    assert result["points"] == 0
    assert "the scores are not scaled" in result["message"]


def test_every_check_a_wrong_softmax_axis_fails_names_it(tmp_path):
    """Not only the check that compares the weights: the masked check and the model's causality say it too."""
    for check, exercise in (("masked_keys", "attention"), ("test_gpt_is_causal", "model")):
        result = graded_check(tmp_path / check, "softmax over the wrong axis", check, exercise)
        assert result["points"] == 0 and "over the queries" in result["message"], result["message"]


def test_sampling_from_a_gpt_with_a_mistake_names_model_py(tmp_path):
    """generation.py's loops can part when model.py's GPT is wrong (its cached step has the residual the
    GPT lacks): the check names model.py, not the loops."""
    result = graded_check(tmp_path, "missing residual", "sampling_agree", "generation")
    assert result["points"] == 0
    assert "this check runs your GPT of model.py" in result["message"], result["message"]


@pytest.mark.parametrize("mistake, named", [
    ("cached positions start from 0", "generate of generation.py (exercise 7) picks other tokens"),
    ("softmax over the wrong axis", "this check runs your GPT of model.py"),
])
def test_a_wrong_gpt2_continuation_names_the_file_at_fault(mistake, named, tmp_path):
    """The capstone's greedy check runs the loaded GPT and generation.py's loop: it names the one at fault
    (a GPT with a wrong attention computes other logits; a loop with wrong positions, other tokens from
    the right logits)."""
    result = graded_check(tmp_path, mistake, "greedy_continuation", "gpt2")
    assert result["points"] == 0
    assert named in result["message"], result["message"]


DIAGNOSES = {
    # mistake: what the GPT check reports, from comparing each sublayer on the reference's inputs
    "tanh-approximate GELU": "blocks.0: norm1, attention and norm2 match; ffn_in differs — yours matches the tanh "
                             'approximation: exact GELU expected (activation="gelu")',
    "Keras' default LayerNorm epsilon": "blocks.0: norm1 and attention match; norm2 differs — yours matches Keras' "
                                        "default epsilon=1e-3: LayerNormalization(epsilon=1e-5) expected",
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


def test_the_causal_check_tells_seeing_the_future(tmp_path):
    result = graded_check(tmp_path, "model without the causal mask", "gpt_is_causal", "model")
    assert result["points"] == 0
    assert "your model lets positions see the future" in result["message"]


BATCH_MIXING = [("x = self.embedding(token_ids)",  # each sequence shifted by the batch's mean, as a norm over axis 0 does
                 "x = self.embedding(token_ids)\n        x = x - ops.mean(x, axis=0, keepdims=True)")]


def test_the_causal_check_tells_depending_on_the_batch_apart_from_seeing_the_future(tmp_path):
    folder = submission(tmp_path, {"model.py": BATCH_MIXING})
    report = grade(tmp_path, "--submission", str(folder), "-k", "gpt_is_causal", exercises=["model"])
    [result] = report["exercises"]["model"]["tests"]
    assert result["points"] == 0
    assert "your model mixes the sequences of a batch" in result["message"]
    assert "future" not in result["message"]


def test_an_exception_in_a_layer_shows_its_own_message_and_the_students_line(tmp_path):
    """Keras wraps an exception raised in a layer's call in text of its own, with terminal colour codes."""
    folder = submission(tmp_path, {"model.py": [("self.ffn_out = keras.layers.Dense(embed_dim)",
                                                 "self.ffn_out = keras.layers.Dense(ff_dim)")]})
    report = grade(tmp_path, "--submission", str(folder), "-k", "block_matches_reference", exercises=["model"])
    [result] = report["exercises"]["model"]["tests"]
    assert result["message"].startswith("your code raised ")
    assert "(model.py, line 136: return x + self.ffn_out(self.ffn_in(self.norm2(x))))" in result["message"]
    assert "Exception encountered" not in result["message"] and "Arguments received" not in result["message"]
    assert "\x1b" not in result["message"]


def test_reversal_check_catches_a_model_that_looks_ahead(tmp_path):
    result = graded_check(tmp_path, "model without the causal mask", "reversal", "model")
    assert result["points"] == 0
    assert "it is looking at the future" in result["message"]


@pytest.mark.parametrize("mistake", ["missing residual", "post-LN instead of pre-LN"])
def test_the_training_check_names_a_wrong_gpt_without_training_it(mistake, tmp_path):
    """How far a wrong GPT learns in 100 steps can hang on rounding (without the attention's residual,
    one passed on JAX and failed on TensorFlow): it is not trained, on any backend, and model.py is named."""
    result = graded_check(tmp_path, mistake, "trains_your_gpt_on_reversal", "training")
    assert result["points"] == 0
    assert result["message"].startswith("your GPT was not trained on the reversal task")
    assert "runs your GPT of model.py" in result["message"]


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
    "sampling.py": [  # top-k through a sort; the temperature as a power of the probabilities; the draw by argmax
        ("kth_largest = ops.top_k(logits, k)[0][:, -1:]", "kth_largest = ops.sort(logits, axis=-1)[:, -k:][:, :1]"),
        ("    logits = logits / temperature\n",
         "    logits = ops.log(ops.power(ops.softmax(logits, axis=-1), 1 / temperature))\n"),
        ("    passed = cumulative <= uniform[:, None] * cumulative[:, -1:]\n"
         "    return ops.sum(ops.cast(passed, \"int32\"), axis=-1)\n",
         "    beyond = cumulative > uniform[:, None] * cumulative[:, -1:]\n"
         "    return ops.cast(ops.argmax(ops.cast(beyond, \"int32\"), axis=-1), \"int32\")\n"),
    ],
}


def test_correct_alternatives_score_full_marks(tmp_path):
    folder = submission(tmp_path, ALTERNATIVES)
    report = grade(tmp_path, "--submission", str(folder),
                   exercises=["positional_embedding", "masking", "attention", "sampling"])
    assert {name: result["points"] for name, result in report["exercises"].items()} == {
        "positional_embedding": 20, "masking": 20, "attention": 30, "sampling": 20}


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
