"""Grading of exercises/training.py (20 points)."""

import math

import keras
import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, is_close, tensor, to_numpy
from grader.reference import FIXED_SEED, check_matches, draw_distinct, seed_keras
from grader.test_model import REVERSAL_HALF, REVERSAL_SIZES, REVERSAL_STEPS, build_optimizer, reversal_sequences

PAD = 0
"""The padding id of the loss checks."""


def cross_entropies(logits, targets):
    """``-log softmax(logits)[target]`` per position, in float64."""
    logits = np.asarray(logits, float)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probabilities, np.asarray(targets)[..., None], axis=-1)[..., 0]


def formula_loss(token_ids, logits, pad_id=None, shift=1, over_padding=False):
    """The lesson's loss in NumPy, and its classic misreadings (`shift` 0 or -1, `over_padding`)."""
    if shift == 1:
        logits, targets = logits[:, :-1], token_ids[:, 1:]
    elif shift == -1:
        logits, targets = logits[:, 1:], token_ids[:, :-1]
    else:
        targets = token_ids
    losses = cross_entropies(logits, targets)
    real = np.ones_like(losses) if pad_id is None else (targets != pad_id).astype(float)
    return (losses * real).sum() / (real.size if over_padding else max(real.sum(), 1))


LOSS_MISREADINGS = {
    "your loss scores each position against its own input token: shift the targets by one, logits[:, :-1] "
    "against token_ids[:, 1:] (a model that copies its input would score perfectly under yours)": {"shift": 0},
    "the targets are shifted the wrong way: position t predicts token t + 1, so logits[:, :-1] go with "
    "token_ids[:, 1:]": {"shift": -1},
    "the loss is averaged over the padding too: divide the sum over real targets by their number, not by all "
    "the positions": {"over_padding": True},
    "padding targets are not ignored: targets equal to pad_id get no loss and do not count in the mean": {
        "pad_id": None},
}


def loss_hint(loss, token_ids, logits):
    for hint, misreading in LOSS_MISREADINGS.items():
        if is_close(loss, formula_loss(token_ids, logits, **{"pad_id": PAD, **misreading})):
            return hint
    return None


def draw_loss(rng, module):
    batch, length, vocab_size = draw_distinct(rng, (2, 5), (5, 12), (6, 20))
    token_ids = rng.integers(1, vocab_size, (batch, length))
    for row in range(batch):  # right padding: a few rows end early
        token_ids[row, rng.integers(length // 2, length + 1):] = PAD
    logits = (3 * rng.normal(size=(batch, length, vocab_size))).astype("float32")
    return {"token_ids": token_ids.astype("int32"), "logits": logits}


def run_loss(module, inputs):
    loss = module.next_token_loss(tensor(inputs["token_ids"]), tensor(inputs["logits"]), pad_id=PAD)
    return {"loss": to_numpy(loss, "next_token_loss").astype("float32")}


@pytest.mark.points(5)
def test_loss_matches_reference(student, reference):
    for inputs, expected in reference("loss", draw_loss, run_loss):
        loss = run_loss(student, inputs)["loss"]
        check_close(loss, expected["loss"], f"next_token_loss(..., pad_id={PAD})",
                    hint=lambda: loss_hint(loss, inputs["token_ids"], inputs["logits"]))


@pytest.mark.points(3)
def test_loss_is_next_token(student, rngs):
    """A model that copies its input is not a good next-token predictor."""
    for rng in rngs:
        token_ids = rng.integers(0, 9, (2, 6))
        copying = 20 * np.eye(9, dtype="float32")[token_ids] - 10  # (2, 6, 9): each position says "my input"
        loss = to_numpy(student.next_token_loss(tensor(token_ids), tensor(copying)), "next_token_loss")
        check_close(loss, formula_loss(token_ids, copying), "the loss of a model that copies its input",
                    hint=lambda: loss_hint(loss, token_ids, copying))


@pytest.mark.points(3)
def test_loss_stays_finite_for_large_logits(student, rngs):
    for rng in rngs:
        token_ids = rng.integers(0, 7, (2, 5))
        logits = rng.choice([-1e4, 1e4], size=(2, 5, 7)).astype("float32")
        loss = to_numpy(student.next_token_loss(tensor(token_ids), tensor(logits)), "next_token_loss")
        if not np.all(np.isfinite(loss)):
            raise GradingFailure(
                f"with logits of +-1e4 the loss is {float(np.ravel(loss)[0])}: the softmax of the losing tokens "
                "underflows to 0 and log(0) = -inf; compute the log-softmax in one step, "
                "z - max(z) - log(sum(exp(z - max(z)))) (lesson, section 2)")
        check_close(loss, formula_loss(token_ids, logits), "the loss for logits of +-1e4")


@pytest.mark.points(2)
def test_loss_is_float32_under_mixed_precision(student, rngs):
    for rng in rngs:
        token_ids = rng.integers(0, 300, (2, 6))
        logits = (4 * rng.normal(size=(2, 6, 300))).astype("float16")
        loss = student.next_token_loss(tensor(token_ids), tensor(logits))
        if keras.backend.standardize_dtype(loss.dtype) != "float32":
            raise GradingFailure(f"the loss of float16 logits has dtype {keras.backend.standardize_dtype(loss.dtype)}: "
                                 "cast the logits to float32 first and return a float32 loss (lesson, section 2)")
        check_close(to_numpy(loss, "next_token_loss"), formula_loss(token_ids, logits.astype("float32")),
                    "the loss of float16 logits",
                    hint=lambda: "the loss is computed in float16: cast the logits to float32 first (lesson, section 2)")


def schedule_steps(warmup_steps, total_steps):
    """The steps the schedule is read at: the edges of each piece and some between."""
    steps = {0, 1, warmup_steps - 1, warmup_steps, warmup_steps + 1, (warmup_steps + total_steps) // 2,
             total_steps - 1, total_steps, total_steps + 1, total_steps + 7}
    return sorted(step for step in steps if step >= 0)


def formula_schedule(step, peak, warmup_steps, total_steps, floor, warmup_shift=0, warmup_extra=0,
                     cosine_over=None, use_floor=True, clipped=True):
    """The lesson's schedule in NumPy, and its classic misreadings."""
    if step < warmup_steps:
        return peak * (step + warmup_shift) / (warmup_steps + warmup_extra)
    progress = (step - warmup_steps) / ((cosine_over or total_steps - warmup_steps))
    if clipped:
        progress = min(progress, 1.0)
    low = floor if use_floor else 0.0
    return low + (peak - low) * (1 + math.cos(math.pi * progress)) / 2


SCHEDULE_MISREADINGS = {
    "the warm-up is off by one: lr = peak * step / warmup_steps, 0 at step 0 and the peak exactly at step "
    "warmup_steps": [{"warmup_shift": 1}, {"warmup_extra": 1}, {"warmup_shift": 1, "warmup_extra": 1}],
    "the cosine does not reach its floor at total_steps: progress = (step - warmup_steps) / "
    "(total_steps - warmup_steps)": [{"cosine_over": "total"}],
    "the cosine ends at 0, not at min_learning_rate: lr = floor + (peak - floor) * (1 + cos(pi * progress)) / 2":
        [{"use_floor": False}],
    "the rate rises again after total_steps: clip the progress at 1, so the rate stays at its floor": [
        {"clipped": False}],
}


def schedule_hint(rates, settings, steps):
    for hint, misreadings in SCHEDULE_MISREADINGS.items():
        for misreading in misreadings:
            if misreading.get("cosine_over") == "total":
                misreading = {"cosine_over": settings["total_steps"]}
            if is_close(rates, [formula_schedule(step, **settings, **misreading) for step in steps]):
                return hint
    return None


def draw_schedule(rng, module):
    warmup_steps, length = draw_distinct(rng, (2, 12), (5, 40))
    peak = float(rng.uniform(1e-3, 1e-2))
    return {"peak": np.asarray(peak), "warmup_steps": np.asarray(warmup_steps),
            "total_steps": np.asarray(warmup_steps + length), "floor": np.asarray(peak * rng.uniform(0.05, 0.3))}


def schedule_settings(inputs):
    return {"peak": float(inputs["peak"]), "warmup_steps": int(inputs["warmup_steps"]),
            "total_steps": int(inputs["total_steps"]), "floor": float(inputs["floor"])}


def built_schedule(module, settings):
    return module.WarmupCosine(settings["peak"], settings["warmup_steps"], settings["total_steps"], settings["floor"])


def read_schedule(schedule, steps):
    """The rates of `schedule` at `steps`, each given as the optimizer gives it: an int64 tensor."""
    return np.asarray([to_numpy(schedule(tensor(np.int64(step))), "WarmupCosine") for step in steps], float)


def run_schedule(module, inputs):
    settings = schedule_settings(inputs)
    steps = schedule_steps(settings["warmup_steps"], settings["total_steps"])
    return {"rates": read_schedule(built_schedule(module, settings), steps).astype("float32")}


@pytest.mark.points(4)
def test_schedule_matches_reference(student, reference):
    for inputs, expected in reference("schedule", draw_schedule, run_schedule):
        settings = schedule_settings(inputs)
        steps = schedule_steps(settings["warmup_steps"], settings["total_steps"])
        rates = run_schedule(student, inputs)["rates"]
        check_close(rates, expected["rates"], f"WarmupCosine{tuple(settings.values())} at the steps {steps}",
                    hint=lambda: schedule_hint(rates, settings, steps))


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
            raise GradingFailure(f"WarmupCosine.from_config(schedule.get_config()) fails ({type(error).__name__}: "
                                 f"{error}): get_config must return the constructor's arguments") from None
        steps = schedule_steps(settings["warmup_steps"], settings["total_steps"])
        check_matches(read_schedule(restored, steps), read_schedule(schedule, steps),
                      "the schedule rebuilt by from_config(get_config())")


@pytest.mark.points(2)
def test_trains_your_gpt_on_reversal(student, students):
    """Your GPT, your loss and your schedule learn to reverse sequences (the reversal check of model.py)."""
    seed_keras(FIXED_SEED, "reversal")  # the same data and initial weights in every run
    rng = np.random.default_rng(FIXED_SEED)
    schedule = student.WarmupCosine(5e-3, 10, REVERSAL_STEPS, 5e-4)
    model = students["model"].GPT(**REVERSAL_SIZES)
    jit_compile = keras.backend.backend() == "jax"  # XLA costs TensorFlow more than it saves here
    model.compile(optimizer=keras.optimizers.Adam(), loss=student.next_token_loss, jit_compile=jit_compile)
    # An Adam with your schedule, made beside the model (in the sandbox's process with --isolate).
    optimizer = model.optimizer.from_config({"learning_rate": schedule})
    model.compile(optimizer=optimizer, loss=student.next_token_loss, jit_compile=jit_compile)
    train = reversal_sequences(rng, REVERSAL_STEPS * 64)
    build_optimizer(model, train[:1])
    model.fit(train, train, batch_size=64, epochs=1, verbose=0, shuffle=False)
    test = reversal_sequences(rng, 512)
    predicted = to_numpy(model(tensor(test)), "GPT").argmax(axis=-1)
    correct = predicted[:, :-1] == test[:, 1:]
    first_half, second_half = correct[:, : REVERSAL_HALF - 1].mean(), correct[:, REVERSAL_HALF - 1:].mean()
    if (predicted == test).mean() > 0.9:
        raise GradingFailure("trained with your loss, your GPT predicts each position's own input token: the "
                             "targets are not shifted by one")
    if second_half < 0.9:
        raise GradingFailure(
            f"trained with your loss and schedule on the reversal task, your GPT predicts only {second_half:.0%} of "
            "the reversed second half (the reference gets over 90%): check the loss and the schedule against the "
            "lesson (and model.py's reversal check)")
    if first_half > 1 / REVERSAL_SIZES["vocab_size"] + 0.15:
        raise GradingFailure(f"trained on the reversal task, your GPT predicts {first_half:.0%} of the random first "
                             "half: it sees the future (model.py's causal mask)")
