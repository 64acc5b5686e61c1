"""Grading of exercises/training.py (20 points)."""

import keras
import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, is_close, tensor, to_numpy
from grader.families import LOSS, SCHEDULE, closest_mistake
from grader.feedback import Feedback
from grader.reference import FIXED_SEED, check_matches, draw_distinct, seed_keras
from grader.test_model import (REVERSAL_HALF, REVERSAL_SIZES, REVERSAL_STEPS, gpt_differs, reversal_sequences,
                               trained_logits)

PAD = 0
"""The padding id of the padded loss checks."""


def draw_loss(rng, module):
    batch, length, vocab_size = draw_distinct(rng, (2, 5), (5, 12), (6, 20))
    token_ids = rng.integers(1, vocab_size, (batch, length))
    for row in range(batch):  # right padding: a few rows end early
        token_ids[row, rng.integers(length // 2, length + 1):] = PAD
    logits = (3 * rng.normal(size=(batch, length, vocab_size))).astype("float32")
    return {"token_ids": token_ids.astype("int32"), "logits": logits, "pad_id": np.asarray(PAD)}


def draw_copying(rng, module):
    """A model that copies its input: each position says "my own token"."""
    token_ids = rng.integers(0, 9, (2, 6))
    return {"token_ids": token_ids.astype("int32"), "logits": 20 * np.eye(9, dtype="float32")[token_ids] - 10}


def draw_large_logits(rng, module):
    return {"token_ids": rng.integers(0, 7, (2, 5)).astype("int32"),
            "logits": rng.choice([-1e4, 1e4], size=(2, 5, 7)).astype("float32")}


def draw_float16(rng, module):
    return {"token_ids": rng.integers(0, 300, (2, 6)).astype("int32"),
            "logits": (4 * rng.normal(size=(2, 6, 300))).astype("float16")}


def student_loss(module, inputs):
    """`module`'s loss tensor on `inputs` (with their pad_id, if any)."""
    pad_id = {"pad_id": int(inputs["pad_id"])} if "pad_id" in inputs else {}
    return module.next_token_loss(tensor(inputs["token_ids"]), tensor(inputs["logits"]), **pad_id)


def run_loss(module, inputs):
    return {"loss": to_numpy(student_loss(module, inputs), "next_token_loss").astype("float32")}


def check_loss(loss, expected, what):
    """Compare a loss with the reference's, naming the misreading it behaves like."""
    check_close(loss, expected["loss"], what, hint=lambda: closest_mistake(loss, expected, "loss", LOSS))


@pytest.mark.points(5)
def test_loss_matches_reference(student, reference):
    for inputs, expected in reference("loss", draw_loss, run_loss):
        check_loss(run_loss(student, inputs)["loss"], expected, f"next_token_loss(..., pad_id={PAD})")


@pytest.mark.points(3)
def test_loss_is_next_token(student, reference):
    """A model that copies its input is not a good next-token predictor."""
    for inputs, expected in reference("copying", draw_copying, run_loss):
        check_loss(run_loss(student, inputs)["loss"], expected, "the loss of a model that copies its input")


@pytest.mark.points(3)
def test_loss_stays_finite_for_large_logits(student, reference):
    for inputs, expected in reference("large_logits", draw_large_logits, run_loss):
        loss = run_loss(student, inputs)["loss"]
        if not np.all(np.isfinite(loss)):
            raise GradingFailure(Feedback(
                f"with logits of +-1e4 the loss is {float(np.ravel(loss)[0])}",
                "the softmax of the losing tokens underflows to 0 and log(0) = -inf",
                "compute the log-softmax in one step, z - max(z) - log(sum(exp(z - max(z)))) (lesson, section 2)"))
        check_loss(loss, expected, "the loss for logits of +-1e4")


FLOAT16_LOSS = Feedback(cause="the loss is computed in float16", fix="cast the logits to float32 first (lesson, section 2)")


@pytest.mark.points(2)
def test_loss_is_float32_under_mixed_precision(student, reference):
    for inputs, expected in reference("float16", draw_float16, run_loss):
        loss = student_loss(student, inputs)
        dtype = keras.backend.standardize_dtype(loss.dtype)
        if dtype != "float32":
            raise GradingFailure(FLOAT16_LOSS.located(f"the loss of float16 logits has dtype {dtype}"))
        check_close(to_numpy(loss, "next_token_loss"), expected["loss"], "the loss of float16 logits",
                    hint=lambda: float16_hint(student, inputs, expected))


def float16_hint(student, inputs, expected):
    """Blame the precision only when the same logits, given in float32, get the reference's loss."""
    in_float32 = run_loss(student, {**inputs, "logits": inputs["logits"].astype("float32")})["loss"]
    return FLOAT16_LOSS if is_close(in_float32, expected["loss"]) else closest_mistake(in_float32, expected, "loss", LOSS)


def schedule_steps(warmup_steps, total_steps):
    """The steps the schedule is read at: the edges of each piece and some between."""
    steps = {0, 1, warmup_steps - 1, warmup_steps, warmup_steps + 1, (warmup_steps + total_steps) // 2,
             total_steps - 1, total_steps, total_steps + 1, total_steps + 7}
    return sorted(step for step in steps if step >= 0)


def draw_schedule(rng, module):
    warmup_steps, length = draw_distinct(rng, (2, 12), (5, 40))
    peak = float(rng.uniform(1e-3, 1e-2))
    return {"peak": np.asarray(peak), "warmup_steps": np.asarray(warmup_steps),
            "total_steps": np.asarray(warmup_steps + length), "floor": np.asarray(peak * rng.uniform(0.05, 0.3)),
            "steps": np.asarray(schedule_steps(warmup_steps, warmup_steps + length))}


def schedule_settings(inputs):
    return {"peak": float(inputs["peak"]), "warmup_steps": int(inputs["warmup_steps"]),
            "total_steps": int(inputs["total_steps"]), "floor": float(inputs["floor"])}


def built_schedule(module, settings):
    return module.WarmupCosine(settings["peak"], settings["warmup_steps"], settings["total_steps"], settings["floor"])


def read_schedule(schedule, steps):
    """The rates of `schedule` at `steps`, each given as the optimizer gives it: an int64 tensor."""
    return np.asarray([to_numpy(schedule(tensor(np.int64(step))), "WarmupCosine") for step in steps], float)


def run_schedule(module, inputs):
    rates = read_schedule(built_schedule(module, schedule_settings(inputs)), inputs["steps"].tolist())
    return {"rates": rates.astype("float32")}


@pytest.mark.points(4)
def test_schedule_matches_reference(student, reference):
    for inputs, expected in reference("schedule", draw_schedule, run_schedule):
        rates = run_schedule(student, inputs)["rates"]
        check_close(rates, expected["rates"],
                    f"WarmupCosine{tuple(schedule_settings(inputs).values())} at the steps {inputs['steps'].tolist()}",
                    hint=lambda: closest_mistake(rates, expected, "rates", SCHEDULE))


@pytest.mark.points(1)
def test_schedule_serialises(student, rngs):
    for rng in rngs:
        settings = schedule_settings(draw_schedule(rng, None))
        schedule = built_schedule(student, settings)
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise GradingFailure("WarmupCosine must subclass keras.optimizers.schedules.LearningRateSchedule")
        try:
            restored = student.WarmupCosine.from_config(schedule.get_config())
        except Exception as error:
            raise GradingFailure(Feedback(
                f"WarmupCosine.from_config(schedule.get_config()) fails ({type(error).__name__}: {error})",
                fix="get_config must return the constructor's arguments")) from None
        steps = schedule_steps(settings["warmup_steps"], settings["total_steps"])
        check_matches(read_schedule(restored, steps), read_schedule(schedule, steps),
                      "the schedule rebuilt by from_config(get_config())")


@pytest.mark.points(2)
def test_trains_your_gpt_on_reversal(student, students, references):
    """Your GPT, your loss and your schedule learn to reverse sequences (the reversal check of model.py).

    Only a GPT that computes the reference's logits is trained: how far a wrong one learns in 100 steps
    can hang on the backend's rounding, and one piece of code gets one verdict on every backend."""
    schedule = student.WarmupCosine(5e-3, 10, REVERSAL_STEPS, 5e-4)
    model_hint = gpt_differs(references, students["model"])
    if model_hint:
        raise GradingFailure(Feedback("your GPT was not trained on the reversal task", model_hint.cause, model_hint.fix))
    seed_keras(FIXED_SEED, "reversal")  # the same data and initial weights in every run
    rng = np.random.default_rng(FIXED_SEED)
    model = students["model"].GPT(**REVERSAL_SIZES)
    jit_compile = keras.backend.backend() == "jax"  # XLA costs TensorFlow more than it saves here
    model.compile(optimizer=keras.optimizers.Adam(), loss=student.next_token_loss, jit_compile=jit_compile)
    # An Adam with your schedule, made beside the model (in the sandbox's process with --isolate).
    optimizer = model.optimizer.from_config({"learning_rate": schedule})
    model.compile(optimizer=optimizer, loss=student.next_token_loss, jit_compile=jit_compile)
    train = reversal_sequences(rng, REVERSAL_STEPS * 64)
    test = reversal_sequences(rng, 512)
    predicted = trained_logits(model, train, train, test).argmax(axis=-1)
    correct = predicted[:, :-1] == test[:, 1:]
    first_half, second_half = correct[:, : REVERSAL_HALF - 1].mean(), correct[:, REVERSAL_HALF - 1:].mean()
    if (predicted == test).mean() > 0.9:
        raise GradingFailure(Feedback("trained with your loss, your GPT predicts each position's own input token",
                                      "the targets are not shifted by one"))
    if second_half < 0.9:
        raise GradingFailure(Feedback(
            f"trained with your loss and schedule on the reversal task, your GPT predicts only {second_half:.0%} "
            "of the reversed second half (the reference gets over 90%)",
            fix="check the loss and the schedule against the lesson (and model.py's reversal check)"))
    if first_half > 1 / REVERSAL_SIZES["vocab_size"] + 0.15:
        raise GradingFailure(Feedback(
            f"trained on the reversal task, your GPT predicts {first_half:.0%} of the random first half",
            "it sees the future", "model.py's causal mask"))
