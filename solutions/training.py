"""Exercise 5: the training objective, next-token cross-entropy, and the learning-rate schedule.

Lesson
======

1. What a GPT is trained to do
------------------------------
Your GPT (exercise 4) returns logits of shape ``(B, T, V)``: at every position ``t`` a score
for each of the ``V`` tokens that could come **next**. Training makes the right next token
likely. For a sequence ``x_0 .. x_{T-1}``, position ``t`` has seen ``x_0 .. x_t`` (the causal
mask), so its target is ``x_{t+1}``: the logits of positions ``0 .. T-2`` are scored against
the ids of positions ``1 .. T-1``, and the last position has no target. Shift by one:
``logits[:, :-1]`` against ``token_ids[:, 1:]``. Unshifted, each position would be scored
against its own input token, which the causal mask lets it see: a model that merely copies its
input would score perfectly and learn nothing about what comes next.

2. Cross-entropy, computed stably
---------------------------------
The loss of one prediction is ``-log p(target)``, with ``p = softmax(logits)``. Take the log of
the softmax in one step, the *log-softmax*::

    log_softmax(z)_i = z_i - log(sum_j exp(z_j)) = z_i - m - log(sum_j exp(z_j - m)),  m = max_j z_j

Subtracting the maximum keeps every ``exp`` at most 1, so nothing overflows, and the sum is at
least 1, so its log is finite. ``log(softmax(z))`` is not the same computation in floating
point: with logits of +-1e4 the softmax of the losing tokens underflows to exactly 0, and
``log(0) = -inf`` makes the loss infinite (and its gradient NaN).

Under mixed precision the model computes in float16, whose largest number is 65504 and whose
precision is three decimal digits: too coarse for a sum over 50,000 tokens. Cast the logits
to float32 first, and return the loss as a float32 scalar.

3. Padding
----------
A batch of sequences of different lengths is filled up with a padding id. A target that is
padding is not a prediction to learn: it gets no loss, and it does not count in the mean
either. Average over the real targets only, ``sum(loss * real) / sum(real)``; dividing by all
the positions instead makes the loss of a batch depend on how much padding it holds.

4. The learning-rate schedule: warm-up, then a cosine
-----------------------------------------------------
At the start the weights are random and Adam's moment estimates are poor, so large steps can
throw training off. GPT-2 and nanoGPT *warm up*: the rate rises linearly from 0 for
``warmup_steps`` optimizer steps, then follows half a cosine down to a floor at ``total_steps``,
and stays at the floor after that. With ``s`` the step (Keras' ``optimizer.iterations``, 0 for
the first update)::

    s < warmup_steps:                 lr = peak * s / warmup_steps
    warmup_steps <= s <= total_steps: lr = floor + (peak - floor) * (1 + cos(pi * progress)) / 2,
                                      progress = (s - warmup_steps) / (total_steps - warmup_steps)
    s > total_steps:                  lr = floor

So ``lr(0) = 0``, ``lr(warmup_steps) = peak`` exactly, and ``lr(total_steps) = floor``. The two
usual slips: a warm-up off by one (``(s + 1) / warmup_steps`` reaches the peak a step early),
and a cosine that does not reach its floor (its progress measured over ``total_steps``
instead of ``total_steps - warmup_steps``, or the floor forgotten).

A Keras schedule is a ``keras.optimizers.schedules.LearningRateSchedule``: the optimizer calls
it with the step, a tensor, inside its compiled training step. So compute with ``keras.ops``
(``ops.where`` to choose between the pieces), never with Python's ``if`` on the step. A model
saved with its optimizer stores the schedule through ``get_config`` and rebuilds it with
``from_config``: ``get_config`` returns the constructor's arguments.

5. Putting it together
----------------------
Both follow Keras' conventions, so they plug straight into ``compile``: the loss takes
``(y_true, y_pred)`` = ``(token_ids, logits)``, and a model that predicts the next token of its
own input trains on ``fit(token_ids, token_ids)``::

    model.compile(optimizer=keras.optimizers.AdamW(WarmupCosine(3e-4, 100, 5000, 3e-5)),
                  loss=next_token_loss)
    model.fit(token_ids, token_ids, batch_size=32)

Used as ``loss=`` in ``compile``, your function does not receive the ids as you passed them:
Keras wraps it in a ``Loss`` that converts ``y_true`` to the loss's dtype, float32, before
calling it. So cast the ids to an integer dtype (``ops.cast(token_ids, "int32")``) before
using them as indices into the log-probabilities (``ops.take_along_axis`` wants integer
indices) or comparing them with `pad_id`. Float32 holds every integer up to 2**24 exactly, so
no id of a real vocabulary is changed by the round trip.

``keras-tx train TASK --model exercises`` trains your GPT with your `next_token_loss` and
`WarmupCosine` once you have written them. It first draws your GPT's matrices again as GPT-2
does, and as the library's GPT starts: normal with standard deviation 0.02, and the two
projections that end a residual branch (``attention.output_dense``, ``ffn_out``) narrower
by ``sqrt(2 * num_layers)``, as ``2 * num_layers`` of them add up in the residual stream.
Keras' defaults start wider; at this size they even learn a little faster, but then your
validation loss could not be compared with the library's at the same settings.
"""

import math

import keras
from keras import ops


def next_token_loss(token_ids, logits, pad_id=None):
    """The mean cross-entropy of predicting each next token: the loss a GPT is trained on.

    Lesson: sections 1 to 3.

    Args:
        token_ids: ``(B, T)`` ids of the sequences the model read: integers, or floats holding
            integers (Keras hands a loss given to ``compile`` its targets as float32; lesson,
            section 5), so cast them to an integer dtype before indexing with them.
        logits: ``(B, T, V)`` scores the model gave, any float dtype.
        pad_id: the padding id; targets equal to it are ignored. None: no padding.

    Returns:
        A float32 scalar tensor: the mean of ``-log p(token_ids[:, t + 1])`` over the real
        targets of positions ``t = 0 .. T-2``.

    Example:
        >>> import numpy as np
        >>> logits = np.log(np.array([[[0.5, 0.5], [0.2, 0.8], [0.5, 0.5]]], "float32"))
        >>> round(float(next_token_loss(np.array([[0, 1, 1]]), logits)), 4)  # -(log 0.5 + log 0.8) / 2
        0.4581
    """
    ### BEGIN SOLUTION
    logits = ops.cast(logits, "float32")[:, :-1]
    targets = ops.cast(token_ids, "int32")[:, 1:]
    shifted = logits - ops.max(logits, axis=-1, keepdims=True)
    log_probabilities = shifted - ops.log(ops.sum(ops.exp(shifted), axis=-1, keepdims=True))
    losses = -ops.take_along_axis(log_probabilities, targets[..., None], axis=-1)[..., 0]
    if pad_id is None:
        return ops.mean(losses)
    real = ops.cast(ops.not_equal(targets, pad_id), "float32")
    return ops.sum(losses * real) / ops.maximum(ops.sum(real), 1.0)
    ### END SOLUTION


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up from 0 to `peak_learning_rate`, then half a cosine down to `min_learning_rate`.

    Lesson: section 4.

    Args:
        peak_learning_rate: the rate at step `warmup_steps`.
        warmup_steps: steps of the linear warm-up (0: none).
        total_steps: the step at which the cosine reaches `min_learning_rate`; more than `warmup_steps`.
        min_learning_rate: the floor, kept after `total_steps`.

    Example:
        >>> schedule = WarmupCosine(1.0, warmup_steps=2, total_steps=6, min_learning_rate=0.2)
        >>> [round(float(schedule(step)), 2) for step in range(8)]
        [0.0, 0.5, 1.0, 0.88, 0.6, 0.32, 0.2, 0.2]
        >>> float(WarmupCosine.from_config(schedule.get_config())(4)) == float(schedule(4))
        True
    """

    def __init__(self, peak_learning_rate, warmup_steps, total_steps, min_learning_rate=0.0):
        ### BEGIN SOLUTION
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"warmup_steps and total_steps need 0 <= warmup_steps < total_steps; "
                             f"received warmup_steps={warmup_steps}, total_steps={total_steps}")
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_learning_rate = min_learning_rate
        ### END SOLUTION

    def __call__(self, step):
        ### BEGIN SOLUTION
        step = ops.cast(step, "float32")
        peak, floor = self.peak_learning_rate, self.min_learning_rate
        warming_up = peak * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0.0, 1.0)
        cosine = floor + (peak - floor) * (1.0 + ops.cos(math.pi * progress)) / 2
        return ops.where(step < self.warmup_steps, warming_up, cosine)
        ### END SOLUTION

    def get_config(self):
        ### BEGIN SOLUTION
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "min_learning_rate": self.min_learning_rate}
        ### END SOLUTION
