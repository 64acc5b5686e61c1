"""The optimizer of nanoGPT's recipe, for Keras: AdamW, warm-up then cosine decay.

nanoGPT (and GPT-2 before it) trains with AdamW, betas 0.9 and 0.99 for a
small model, weight decay on the matrices and embeddings but not on biases or
LayerNorm scales, gradients clipped to a global norm of 1, and a learning rate
that rises linearly from 0 for the warm-up steps, then follows a half cosine
down to a tenth of its peak at the last step.

The library's models learn with `schedule.nanogpt_schedule`, which computes
that curve without stalling PyTorch; a course's own GPT learns with the
student's `WarmupCosine` once written, else with `keras_cosine_schedule`, the
same numbers from Keras' own `CosineDecay`.

>>> schedule = keras_cosine_schedule(1e-3, total_steps=2000)
>>> [round(float(schedule(step)), 6) for step in (0, 50, 100, 2000)]
[0.0, 0.0005, 0.001, 0.0001]
>>> optimizer = nanogpt_adamw(1e-3, total_steps=2000, schedule=keras_cosine_schedule)
"""

import keras

NO_DECAY = ("bias", "gamma", "beta")
"""Names of the variables AdamW leaves undecayed: biases and LayerNorm parameters."""


def keras_cosine_schedule(learning_rate, total_steps, warmup_steps=100):
    """nanoGPT's schedule from Keras' `CosineDecay`: from 0 up to `learning_rate`, then down to a tenth of it.

    The warm-up takes at most half of `total_steps`, as in `schedule.nanogpt_schedule`.
    """
    warmup_steps = min(warmup_steps, total_steps // 2)
    return keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total_steps - warmup_steps), alpha=0.1, warmup_target=learning_rate, warmup_steps=warmup_steps)


def nanogpt_adamw(learning_rate, total_steps, warmup_steps=100, weight_decay=0.1, schedule=None):
    """AdamW with nanoGPT's settings and `schedule(learning_rate, total_steps, warmup_steps)` over `total_steps`.

    `weight_decay` is the decoupled decay of the matrices and embeddings;
    `schedule` makes the learning-rate schedule (default: `schedule.nanogpt_schedule`, or in a
    student release, which leaves that module out, `keras_cosine_schedule`: the same curve).
    """
    if schedule is None:
        try:
            from keras_tx_tools.training.schedule import nanogpt_schedule as schedule
        except ModuleNotFoundError:
            schedule = keras_cosine_schedule
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule(learning_rate, total_steps, warmup_steps),
        weight_decay=weight_decay,
        beta_2=0.99,
        epsilon=1e-8,  # PyTorch's default; Keras' own is 1e-7
        global_clipnorm=1.0,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return optimizer
