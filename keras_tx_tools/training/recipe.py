"""The optimizer of nanoGPT's recipe, for Keras: AdamW, warm-up then cosine decay.

nanoGPT (and GPT-2 before it) trains with AdamW, betas 0.9 and 0.99 for a
small model, weight decay on the matrices and embeddings but not on biases or
LayerNorm scales, gradients clipped to a global norm of 1, and a learning rate
that rises linearly from 0 for the warm-up steps, then follows a half cosine
down to a tenth of its peak at the last step.

>>> schedule = nanogpt_schedule(1e-3, total_steps=2000)
>>> [round(float(schedule(step)), 6) for step in (0, 50, 100, 2000)]
[0.0, 0.0005, 0.001, 0.0001]
>>> optimizer = nanogpt_adamw(1e-3, total_steps=2000)
"""

import keras

NO_DECAY = ("bias", "gamma", "beta")
"""Names of the variables AdamW leaves undecayed: biases and LayerNorm parameters."""


def nanogpt_schedule(learning_rate, total_steps, warmup_steps=100):
    """Linear warm-up to `learning_rate`, then a half cosine to a tenth of it.

    Args:
        learning_rate: the peak learning rate, reached after the warm-up.
        total_steps: steps of the whole run; the cosine ends there.
        warmup_steps: linear warm-up from 0 (at most half of `total_steps`).
    """
    warmup = min(warmup_steps, total_steps // 2)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else learning_rate,
        decay_steps=max(1, total_steps - warmup),
        alpha=0.1,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def nanogpt_adamw(learning_rate, total_steps, warmup_steps=100, weight_decay=0.1):
    """AdamW with nanoGPT's settings and `nanogpt_schedule` over `total_steps`.

    `weight_decay` is the decoupled decay of the matrices and embeddings.
    """
    optimizer = keras.optimizers.AdamW(
        learning_rate=nanogpt_schedule(learning_rate, total_steps, warmup_steps),
        weight_decay=weight_decay,
        beta_2=0.99,
        epsilon=1e-8,  # PyTorch's default; Keras' own is 1e-7
        global_clipnorm=1.0,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return optimizer
