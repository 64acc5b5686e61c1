"""Grading of exercises/model.py (30 points)."""

import keras
import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, is_close, tensor, to_numpy
from grader.diagnosis import block_steps, first_divergence, gpt_steps
from grader.families import BLOCK, GPT, closest_mistake, mismatch
from grader.feedback import Feedback
from grader.layout import (FFN_ACTIVATION, LAYER_NORM_EPSILON, assign_weights, leaf_layers, pack_weights,
                           random_weights, unpack_weights)
from grader.reference import FIXED_SEED, GPT_LENGTH, GPT_SIZES, draw_distinct, draw_mask, seed_keras
from grader.remote import held_attribute


SIZES = GPT_SIZES
"""The model the reference checks build, on batches of 2 sequences of `GPT_LENGTH` tokens, fewer
than its `max_length` positions. Values and weights are drawn afresh each run, the shapes stay: on
JAX each new shape costs a compilation, and the sublayer checks vary the sizes instead."""

ATTENTION_SIZES = {"width": SIZES["embed_dim"], "num_heads": SIZES["num_heads"],
                   "head_size": SIZES["embed_dim"] // SIZES["num_heads"]}
"""The sizes the attention's messages name."""


def check_block_sublayers(leaves, prefix, embed_dim, ff_dim):
    """Check the hyperparameters of one block's sublayers (``leaves``: path -> layer)."""
    for name in ("norm1", "norm2"):
        check_layer_norm(leaves[f"{prefix}{name}"], f"{prefix}{name}")
    ffn_in, ffn_out = leaves[f"{prefix}ffn_in"], leaves[f"{prefix}ffn_out"]
    activation = getattr(ffn_in.activation, "__name__", str(ffn_in.activation))
    if ffn_in.units != ff_dim or activation != FFN_ACTIVATION:  # sizes only in the fix: the cause is the same on every seed
        raise GradingFailure(Feedback(
            f"{prefix}ffn_in is not the layer the exercise prescribes",
            f"its activation is {activation}, not the exact GELU" if activation != FFN_ACTIVATION
            else "it does not have ff_dim units", f'expected Dense({ff_dim}, activation="{FFN_ACTIVATION}")'))
    if ffn_out.units != embed_dim:
        raise GradingFailure(Feedback(f"{prefix}ffn_out is not the layer the exercise prescribes",
                                      "it does not have embed_dim units", f"expected Dense({embed_dim})"))


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
    length = GPT_LENGTH
    x = rng.normal(size=(2, length, SIZES["embed_dim"])).astype("float32")
    block = module.TransformerBlock(SIZES["embed_dim"], SIZES["num_heads"], SIZES["ff_dim"])
    block(tensor(x))
    return {"x": x, "mask": draw_mask(rng, 2, length, length), "num_heads": np.asarray(SIZES["num_heads"]),
            **pack_weights(random_weights(block, "TransformerBlock", rng))}


def built_block(module, inputs):
    x = inputs["x"]
    block = module.TransformerBlock(SIZES["embed_dim"], SIZES["num_heads"], SIZES["ff_dim"])
    block(tensor(x))
    assign_weights(block, "TransformerBlock", unpack_weights(inputs))
    return block


def run_block(module, inputs):
    block = built_block(module, inputs)
    return {"output": to_numpy(block(tensor(inputs["x"]), tensor(inputs["mask"])), "TransformerBlock")}


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


OTHER_WIRING = Feedback(cause="the sublayers are connected otherwise", fix="check how TransformerBlock.call connects them")
"""A block whose sublayers all match the reference's while its output does not, and no known wiring mistake fits."""


@pytest.mark.points(6)
def test_block_matches_reference(student, reference):
    for inputs, expected in reference("block", draw_block, run_block):
        block = built_block(student, inputs)
        mask = tensor(inputs["mask"])
        output = to_numpy(block(tensor(inputs["x"]), mask), "TransformerBlock")
        check_close(output, expected["output"], "TransformerBlock's output", hint=lambda: (
            first_divergence(block, block_steps(), expected, None, mask, **ATTENTION_SIZES)
            or closest_mistake(output, expected, "output", BLOCK)
            or OTHER_WIRING.located("every sublayer matches on the reference's inputs, but the block's output differs")))


def draw_gpt(rng, module):
    token_ids = rng.integers(0, SIZES["vocab_size"], (2, GPT_LENGTH)).astype("int32")
    model = module.GPT(**SIZES)
    model(tensor(token_ids))
    return {"token_ids": token_ids, "num_heads": np.asarray(SIZES["num_heads"]),
            **pack_weights(random_weights(model, "GPT", rng))}


def built_gpt(module, inputs):
    model = module.GPT(**SIZES)
    model(tensor(inputs["token_ids"]))
    assign_weights(model, "GPT", unpack_weights(inputs))
    return model


def run_gpt(module, inputs):
    return {"logits": to_numpy(built_gpt(module, inputs)(tensor(inputs["token_ids"])), "GPT")}


def gpt_differs(references, model):
    """Feedback naming model.py when the student's GPT (`model`: their model module) computes other logits
    than the reference's on this exercise's own case: the cause of a failure in a later exercise that runs it.

    None when it matches, and where the run has no case of the model exercise (a release without it, whose
    model.py is given finished).
    """
    try:
        cases = references("model", "gpt", draw_gpt, run_gpt)
    except (FileNotFoundError, KeyError):
        return None
    for inputs, expected in cases:
        if "logits" not in expected:
            return None
        try:
            logits = to_numpy(built_gpt(model, inputs)(tensor(inputs["token_ids"])), "GPT")
        except NotImplementedError:
            raise  # a stub: not written yet, so the check that asked is not attempted yet
        except Exception:  # noqa: BLE001 -- any other failure of the GPT itself is the finding
            logits = None
        if logits is None or not is_close(logits, expected["logits"]):
            return Feedback(cause="this check runs your GPT of model.py (exercise 4), which does not compute the "
                                  "reference's logits", fix="make model.py's checks pass first")
    return None


def draw_gpt_sizes(rng):
    num_heads, embed_dim, ff_dim = draw_sublayer_sizes(rng)
    vocab_size, max_length, num_layers = draw_distinct(rng, (5, 20), (4, 20), (2, 5), taken=(embed_dim, ff_dim))
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
                                          "it has a bias" if head.use_bias else "it does not have vocab_size units",
                                          f"expected Dense({sizes['vocab_size']}, use_bias=False)"))


@pytest.mark.points(6)
def test_gpt_matches_reference(student, students, reference):
    for inputs, expected in reference("gpt", draw_gpt, run_gpt):
        model = built_gpt(student, inputs)
        logits = to_numpy(model(tensor(inputs["token_ids"])), "GPT")
        check_close(logits, expected["logits"], "GPT's logits",
                    hint=lambda: gpt_hint(model, logits, inputs, expected, students["masking"]))


def gpt_hint(model, logits, inputs, expected, masking):
    """Why the GPT's logits differ: its wiring, else its first sublayer that differs, else its first block."""
    wiring = closest_mistake(logits, expected, "logits", GPT)
    if wiring:
        return wiring
    length = GPT_LENGTH
    mask = causal_mask_of(masking, length)
    if mask is None or mismatch(mask, expected["causal_mask"]):
        return Feedback(cause=f"your causal_mask({length}) is not the causal mask, so the grader cannot feed your "
                              "blocks the reference's mask to find where your GPT differs",
                        fix="the masking exercise's checks say what is wrong with it")
    mask = tensor(mask)
    return (first_divergence(model, gpt_steps(SIZES["num_layers"]), expected, inputs["token_ids"], mask,
                             **ATTENTION_SIZES)
            or block_wiring_hint(model, expected, mask))


def causal_mask_of(masking, length):
    """The student's own ``causal_mask(length)`` as a NumPy array, or None when it fails."""
    try:
        return to_numpy(masking.causal_mask(length), "causal_mask")
    except Exception:  # not written yet, or broken: the masking exercise says which
        return None


def block_wiring_hint(model, expected, mask):
    """The first block that, fed the reference's input, gives another output, and its likely mistake."""
    streams = [expected[f"blocks.{index}.norm1>in"] for index in range(len(model.blocks))] + [expected["final_norm>in"]]
    for index, block in enumerate(model.blocks):
        output = to_numpy(block(tensor(streams[index]), mask), "TransformerBlock")
        if not is_close(output, streams[index + 1]):
            mistake = closest_mistake(output, expected, f"blocks.{index}>out", BLOCK) or OTHER_WIRING
            return mistake.located(f"blocks.{index}: every sublayer matches on the reference's inputs, "
                                   "but the block's output differs")
    return None


SEES_THE_FUTURE_FIX = ("check the causal mask in GPT.call, that the softmax in attention.py runs over the keys (the last "
                       "axis: over the queries it mixes positions), and that split_heads/merge_heads move the head "
                       "axis (a bare reshape mixes positions)")
"""What lets a position see later ones, in the order students make these mistakes."""


@pytest.mark.points(6)
def test_gpt_is_causal(student, rngs):
    """Changing the token at any position p must leave the outputs before p alone, and change p's.

    The changed sequences are one batch, the original sequence comes first in it; it also comes
    first in a batch of 2 with another sequence: a sequence's outputs must not depend on the
    others in its batch. (A batch of 2, the other checks' shape, so that JAX compiles nothing new
    for it.)
    """
    vocab_size, length = SIZES["vocab_size"], GPT_LENGTH
    model = student.GPT(**SIZES)
    for rng in rngs:
        token_ids = rng.integers(0, vocab_size, (1, length)).astype("int32")
        changed = np.repeat(token_ids, length, axis=0)  # row p changes the token at position p
        changed[np.arange(length), np.arange(length)] += rng.integers(1, vocab_size, length)
        changed %= vocab_size
        other = rng.integers(0, vocab_size, (1, length)).astype("int32")
        in_a_pair = to_numpy(model(tensor(np.concatenate([token_ids, other]))), "GPT")[:1]
        batch = to_numpy(model(tensor(np.concatenate([token_ids, changed]))), "GPT")
        before, after = batch[:1], batch[1:]
        if not is_close(before, in_a_pair):
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
                    SEES_THE_FUTURE_FIX))
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


def trained_logits(model, inputs, targets, test_inputs):
    """Train `model` (compiled) for one epoch on `inputs` and `targets` in batches of 64, then return its
    logits on `test_inputs`: the training run of the reversal checks.

    Each backend takes its cheapest way to the same weights. TensorFlow builds the model and its
    optimizer first: made inside `fit`, the optimizer's variables make TensorFlow trace the training
    step twice. (With --isolate the variables stay in the student's process, and are built there.)
    JAX lets `fit` build them symbolically, and predicts with one compiled program: an eager call
    would compile each operation afresh for every new shape.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        model(tensor(test_inputs))
        model.optimizer.build(held_attribute(model, "trainable_variables"))
    model.fit(inputs, targets, batch_size=64, epochs=1, verbose=0, shuffle=False)
    if backend == "jax":
        return to_numpy(model.predict(test_inputs, batch_size=len(test_inputs), verbose=0), "GPT")
    return to_numpy(model(tensor(test_inputs)), "GPT")


@pytest.mark.points(6)
def test_reversal_task(student):
    seed_keras(FIXED_SEED, "reversal")  # the same data and initial weights in every run
    rng = np.random.default_rng(FIXED_SEED)
    model = student.GPT(**REVERSAL_SIZES)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=keras.backend.backend() == "jax")  # XLA costs TensorFlow more than it saves here
    train = reversal_sequences(rng, REVERSAL_STEPS * 64)
    test = reversal_sequences(rng, 512)
    correct = trained_logits(model, train[:, :-1], train[:, 1:], test[:, :-1]).argmax(axis=-1) == test[:, 1:]
    first_half, second_half = correct[:, : REVERSAL_HALF - 1].mean(), correct[:, REVERSAL_HALF - 1 :].mean()
    chance = 1 / REVERSAL_SIZES["vocab_size"]
    if first_half > chance + 0.15:
        raise GradingFailure(Feedback(
            f"trained to reverse sequences, your GPT predicts {first_half:.0%} of the random first half "
            f"(chance: {chance:.0%})", "it is looking at the future",
            SEES_THE_FUTURE_FIX))
    if second_half < 0.9:
        raise GradingFailure(Feedback(
            f"trained to reverse sequences, your GPT predicts only {second_half:.0%} of the reversed second half "
            "(an honest model gets over 90%)", "it does not learn well",
            "check the residual connections, the position embedding and the final LayerNorm"))
