"""Grading of exercises/model.py (30 points)."""

import keras
import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, is_close, tensor, to_numpy
from grader.diagnosis import block_steps, causal, first_divergence, gpt_steps, trace_block, trace_gpt
from grader.feedback import Feedback
from grader.layout import (FFN_ACTIVATION, LAYER_NORM_EPSILON, assign_weights, leaf_layers, pack_weights,
                           random_weights, unpack_weights)
from grader.reference import FIXED_SEED, draw_distinct, seed_keras


SIZES = {"vocab_size": 10, "max_length": 7, "embed_dim": 18, "num_heads": 3, "num_layers": 2, "ff_dim": 32}
"""The model the reference checks build, on batches of 2 sequences of `max_length`: every size
distinct (head size 6). Values and weights are drawn afresh each run, the shapes stay: on JAX
each new shape costs a compilation, and the sublayer checks vary the sizes instead."""


def check_block_sublayers(leaves, prefix, embed_dim, ff_dim):
    """Check the hyperparameters of one block's sublayers (``leaves``: path -> layer)."""
    for name in ("norm1", "norm2"):
        check_layer_norm(leaves[f"{prefix}{name}"], f"{prefix}{name}")
    ffn_in, ffn_out = leaves[f"{prefix}ffn_in"], leaves[f"{prefix}ffn_out"]
    activation = getattr(ffn_in.activation, "__name__", str(ffn_in.activation))
    if ffn_in.units != ff_dim or activation != FFN_ACTIVATION:
        raise GradingFailure(Feedback(
            f"{prefix}ffn_in is not the layer the exercise prescribes", f"it is Dense({ffn_in.units}, activation={activation})",
            f'expected Dense({ff_dim}, activation="{FFN_ACTIVATION}")'))
    if ffn_out.units != embed_dim:
        raise GradingFailure(Feedback(f"{prefix}ffn_out is not the layer the exercise prescribes",
                                      f"it is Dense({ffn_out.units})", f"expected Dense({embed_dim})"))


def check_layer_norm(norm, path):
    """Fail unless `norm` normalises over the features (the last axis) alone, with the lesson's epsilon."""
    axes = [norm.axis] if isinstance(norm.axis, int) else list(norm.axis)
    if axes not in ([-1], [2]):  # the blocks' inputs are (B, T, C): axis 2 is the last
        raise GradingFailure(Feedback(
            f"{path} normalises over the axes {tuple(axes)}", "it normalises over more than each position's features "
            "(a LayerNorm over (T, C) mixes positions, the future included)",
            f"normalise over the last axis only: LayerNormalization(epsilon={LAYER_NORM_EPSILON}), whose axis is -1"))
    if not np.isclose(norm.epsilon, float(LAYER_NORM_EPSILON)):
        raise GradingFailure(Feedback(f"{path} is not the layer the exercise prescribes",
                                      f"it has epsilon={norm.epsilon:g}",
                                      f"expected LayerNormalization(epsilon={LAYER_NORM_EPSILON})"))


def draw_block(rng, module):
    x = rng.normal(size=(2, SIZES["max_length"], SIZES["embed_dim"])).astype("float32")
    block = module.TransformerBlock(SIZES["embed_dim"], SIZES["num_heads"], SIZES["ff_dim"])
    block(tensor(x))
    return {"x": x, **pack_weights(random_weights(block, "TransformerBlock", rng))}


def built_block(module, inputs):
    x = inputs["x"]
    block = module.TransformerBlock(SIZES["embed_dim"], SIZES["num_heads"], SIZES["ff_dim"])
    block(tensor(x))
    assign_weights(block, "TransformerBlock", unpack_weights(inputs))
    return block


def run_block(module, inputs):
    block = built_block(module, inputs)
    x, mask = tensor(inputs["x"]), causal(inputs["x"].shape[1])
    return {"output": to_numpy(block(x, mask), "TransformerBlock"), **trace_block(block, x, mask)[1]}


def block_mistakes(block, x, mask):
    """What a block made of these sublayers computes under each classic mistake: ``{hint: output}``."""
    def attend(h, attention_mask=mask):
        return block.attention(h, attention_mask)

    def mlp(h):
        return block.ffn_out(block.ffn_in(h))

    def post_ln():
        h = block.norm1(x + attend(x))
        return block.norm2(h + mlp(h))

    def no_attention_residual():
        h = attend(block.norm1(x))
        return h + mlp(block.norm2(h))

    def no_mlp_residual():
        return mlp(block.norm2(x + attend(block.norm1(x))))

    def unmasked():
        h = x + attend(block.norm1(x), None)
        return h + mlp(block.norm2(h))

    return {
        Feedback(cause="your block normalises after the residual (post-LN)",
                 fix="this exercise is pre-LN: x = x + attention(norm1(x), attention_mask), "
                     "then x = x + ffn_out(ffn_in(norm2(x)))"): post_ln,
        Feedback(cause="the residual connection around the attention is missing",
                 fix="x = x + attention(norm1(x), attention_mask)"): no_attention_residual,
        Feedback(cause="the residual connection around the MLP is missing",
                 fix="x = x + ffn_out(ffn_in(norm2(x)))"): no_mlp_residual,
        Feedback(cause="the mask does not reach the attention", fix="pass attention_mask on to self.attention"): unmasked,
    }


def first_matching(mistakes, output):
    for hint, compute in mistakes.items():
        try:
            if is_close(output, to_numpy(compute(), "your sublayers")):
                return hint
        except Exception:  # sublayers that cannot even be rearranged this way: not this mistake
            continue
    return None


def draw_sublayer_sizes(rng):
    """``(num_heads, embed_dim, ff_dim)``: head count, head size and MLP width all distinct."""
    num_heads, head_dim, ff_dim = draw_distinct(rng, (2, 4), (2, 5), (4, 17))
    while ff_dim == num_heads * head_dim:
        ff_dim += 1
    return num_heads, num_heads * head_dim, ff_dim


@pytest.mark.points(3)
def test_block_sublayers(student, rngs):
    for rng in rngs:
        num_heads, embed_dim, ff_dim = draw_sublayer_sizes(rng)
        block = student.TransformerBlock(embed_dim, num_heads, ff_dim)
        check_block_sublayers(dict(leaf_layers(block, "TransformerBlock")), "", embed_dim, ff_dim)


@pytest.mark.points(6)
def test_block_matches_reference(student, reference):
    for inputs, expected in reference("block", draw_block, run_block):
        block = built_block(student, inputs)
        x, mask = tensor(inputs["x"]), causal(inputs["x"].shape[1])
        output = to_numpy(block(x, mask), "TransformerBlock")
        check_close(output, expected["output"], "TransformerBlock's output", hint=lambda: (
            first_divergence(block, block_steps(), expected, unpack_weights(inputs), None, mask, SIZES["num_heads"])
            or first_matching(block_mistakes(block, x, mask), output)))


def draw_gpt(rng, module):
    token_ids = rng.integers(0, SIZES["vocab_size"], (2, SIZES["max_length"])).astype("int32")
    model = module.GPT(**SIZES)
    model(tensor(token_ids))
    return {"token_ids": token_ids, **pack_weights(random_weights(model, "GPT", rng))}


def built_gpt(module, inputs):
    model = module.GPT(**SIZES)
    model(tensor(inputs["token_ids"]))
    assign_weights(model, "GPT", unpack_weights(inputs))
    return model


def run_gpt(module, inputs):
    model = built_gpt(module, inputs)
    token_ids = tensor(inputs["token_ids"])
    return {"logits": to_numpy(model(token_ids), "GPT"), **trace_gpt(model, token_ids)[1]}


def gpt_mistakes(model, token_ids):
    """What a GPT made of these sublayers computes under each classic mistake: ``{hint: logits}``."""
    def stack(mask):
        x = model.embedding(token_ids)
        for block in model.blocks:
            x = block(x, mask)
        return x

    mask = causal(token_ids.shape[1])
    return {
        Feedback(cause="the final LayerNorm is missing", fix="apply final_norm after the last block, before lm_head"):
            lambda: model.lm_head(stack(mask)),
        Feedback(cause="the blocks get no causal mask", fix="GPT.call must pass causal_mask(T) to every block"):
            lambda: model.lm_head(model.final_norm(stack(None))),
    }


def draw_gpt_sizes(rng):
    num_heads, embed_dim, ff_dim = draw_sublayer_sizes(rng)
    vocab_size, max_length, num_layers = draw_distinct(rng, (5, 20), (4, 20), (1, 4), taken=(embed_dim, ff_dim))
    return {"vocab_size": vocab_size, "max_length": max_length, "embed_dim": embed_dim,
            "num_heads": num_heads, "num_layers": num_layers, "ff_dim": ff_dim}


@pytest.mark.points(3)
def test_gpt_sublayers(student, rngs):
    for rng in rngs:
        sizes = draw_gpt_sizes(rng)
        model = student.GPT(**sizes)
        leaves = dict(leaf_layers(model, "GPT"))
        if len(model.blocks) != sizes["num_layers"]:
            raise GradingFailure(Feedback(f"GPT(num_layers={sizes['num_layers']}) has {len(model.blocks)} blocks",
                                          "it makes another number of blocks", "make num_layers of them"))
        for index in range(sizes["num_layers"]):
            check_block_sublayers(leaves, f"blocks.{index}.", sizes["embed_dim"], sizes["ff_dim"])
        check_layer_norm(model.final_norm, "final_norm")
        head = model.lm_head
        if head.units != sizes["vocab_size"] or head.use_bias:
            raise GradingFailure(Feedback("lm_head is not the layer the exercise prescribes",
                                          f"it is Dense({head.units}, use_bias={head.use_bias})",
                                          f"expected Dense({sizes['vocab_size']}, use_bias=False)"))


@pytest.mark.points(6)
def test_gpt_matches_reference(student, reference):
    for inputs, expected in reference("gpt", draw_gpt, run_gpt):
        model = built_gpt(student, inputs)
        token_ids = tensor(inputs["token_ids"])
        logits = to_numpy(model(token_ids), "GPT")
        steps = gpt_steps(SIZES["num_layers"])
        check_close(logits, expected["logits"], "GPT's logits", hint=lambda: (
            first_divergence(model, steps, expected, unpack_weights(inputs), inputs["token_ids"],
                             causal(SIZES["max_length"]), SIZES["num_heads"])
            or block_wiring_hint(model, expected) or first_matching(gpt_mistakes(model, token_ids), logits)))


def block_wiring_hint(model, expected):
    """The first block that, fed the reference's input, gives another output, and its likely mistake."""
    mask = causal(SIZES["max_length"])
    streams = [expected[f"blocks.{index}.norm1>in"] for index in range(len(model.blocks))] + [expected["final_norm>in"]]
    for index, block in enumerate(model.blocks):
        x = tensor(streams[index])
        output = to_numpy(block(x, mask), "TransformerBlock")
        if not is_close(output, streams[index + 1]):
            mistake = first_matching(block_mistakes(block, x, mask), output) or Feedback(
                cause="the sublayers are connected otherwise", fix="check how TransformerBlock.call connects them")
            return mistake.located(f"blocks.{index}: every sublayer matches on the reference's inputs, "
                                   "but the block's output differs")
    return None


@pytest.mark.points(6)
def test_gpt_is_causal(student, rngs):
    """Changing the token at any position p must leave the outputs before p alone, and change p's.

    The changed sequences are one batch, the original sequence comes first in it and also alone:
    a sequence's outputs must not depend on the others in its batch.
    """
    vocab_size, length = SIZES["vocab_size"], SIZES["max_length"]
    model = student.GPT(**SIZES)
    for rng in rngs:
        token_ids = rng.integers(0, vocab_size, (1, length)).astype("int32")
        changed = np.repeat(token_ids, length, axis=0)  # row p changes the token at position p
        changed[np.arange(length), np.arange(length)] += rng.integers(1, vocab_size, length)
        changed %= vocab_size
        alone = to_numpy(model(tensor(token_ids)), "GPT")
        batch = to_numpy(model(tensor(np.concatenate([token_ids, changed]))), "GPT")
        before, after = batch[:1], batch[1:]
        if not is_close(before, alone):
            raise GradingFailure(Feedback(
                "a sequence's outputs change with the other sequences in its batch",
                "your model mixes the sequences of a batch",
                "every operation must work within one sequence: no mean, softmax or norm over the batch axis (0), "
                "and no reshape that moves values across it"))
        difference = np.abs(after - before).max(axis=-1)  # (changed position, output position)
        for position in range(length):
            leaked = np.flatnonzero(difference[position, :position] > 1e-5)
            if leaked.size:
                raise GradingFailure(Feedback(
                    f"output at position {leaked[0]} changed when token {position} changed",
                    "your model lets positions see the future",
                    "check the causal mask, and that split_heads/merge_heads move the head axis "
                    "(a bare reshape mixes positions)"))
            if difference[position, position] == 0:
                raise GradingFailure(Feedback(
                    f"changing token {position} did not change the output at position {position}",
                    "the model ignores its input there", "does the model use its input?"))


REVERSAL_SIZES = {"vocab_size": 10, "max_length": 8, "embed_dim": 16, "num_heads": 2, "num_layers": 2, "ff_dim": 32}
"""The model the reversal check trains: a fixed task, independent of the run's seed."""
REVERSAL_STEPS = 100
REVERSAL_HALF = REVERSAL_SIZES["max_length"] // 2


def reversal_sequences(rng, count):
    """Random first halves followed by their reverse: ``3 1 4 1 | 1 4 1 3``."""
    first = rng.integers(0, REVERSAL_SIZES["vocab_size"], (count, REVERSAL_HALF))
    return np.concatenate([first, first[:, ::-1]], axis=1).astype("int32")


def build_optimizer(model, token_ids):
    """Make the optimizer's variables before `fit`: made inside it, TensorFlow traces the training step
    twice. (With --isolate the variables stay in the student's process: `fit` makes them there.)"""
    model(tensor(token_ids))
    variables = model.trainable_variables
    if all(isinstance(variable, keras.Variable) for variable in variables):
        model.optimizer.build(variables)


@pytest.mark.points(6)
def test_reversal_task(student):
    seed_keras(FIXED_SEED, "reversal")  # the same data and initial weights in every run
    rng = np.random.default_rng(FIXED_SEED)
    model = student.GPT(**REVERSAL_SIZES)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=keras.backend.backend() == "jax")  # XLA costs TensorFlow more than it saves here
    train = reversal_sequences(rng, REVERSAL_STEPS * 64)
    build_optimizer(model, train[:1, :-1])
    model.fit(train[:, :-1], train[:, 1:], batch_size=64, epochs=1, verbose=0, shuffle=False)
    test = reversal_sequences(rng, 512)
    correct = to_numpy(model(tensor(test[:, :-1])), "GPT").argmax(axis=-1) == test[:, 1:]
    first_half, second_half = correct[:, : REVERSAL_HALF - 1].mean(), correct[:, REVERSAL_HALF - 1 :].mean()
    chance = 1 / REVERSAL_SIZES["vocab_size"]
    if first_half > chance + 0.15:
        raise GradingFailure(Feedback(
            f"trained to reverse sequences, your GPT predicts {first_half:.0%} of the random first half "
            f"(chance: {chance:.0%})", "it is looking at the future",
            "check the causal mask in GPT.call, and that split_heads/merge_heads move the head axis "
            "(a bare reshape mixes positions)"))
    if second_half < 0.9:
        raise GradingFailure(Feedback(
            f"trained to reverse sequences, your GPT predicts only {second_half:.0%} of the reversed second half "
            "(an honest model gets over 90%)", "it does not learn well",
            "check the residual connections, the position embedding and the final LayerNorm"))
