"""nanoGPT's learning-rate schedule as a Keras schedule that never stalls a PyTorch training step.

The learning rate rises linearly from 0 for the warm-up steps, then follows a
half cosine down to a tenth of its peak at the last step. Keras' own
`CosineDecay(warmup_steps=...)` gives the same numbers but chooses between the
two pieces with `ops.cond`, which on the PyTorch backend reads the step back to
the host and stalls every training step until the device has caught up; here
both pieces are computed and `ops.where` picks one.

It computes what the course's training exercise asks (`WarmupCosine`), so a
student release ships it only with the library.

>>> schedule = nanogpt_schedule(1e-3, total_steps=2000)
>>> [round(float(schedule(step)), 6) for step in (0, 50, 100, 2000)]
[0.0, 0.0005, 0.001, 0.0001]
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tx_tools")
class NanoGPTSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `learning_rate`, then a half cosine to a tenth of it.

    Args:
        learning_rate: the peak learning rate, reached after the warm-up.
        total_steps: steps of the whole run; the cosine ends there.
        warmup_steps: linear warm-up from 0 (at most half of `total_steps`).
    """

    def __init__(self, learning_rate, total_steps, warmup_steps=100):
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.warmup_steps = min(warmup_steps, total_steps // 2)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warming_up = self.learning_rate * step / max(1, self.warmup_steps)
        done = ops.clip((step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps), 0.0, 1.0)
        decaying = self.learning_rate * (0.1 + 0.45 * (1.0 + ops.cos(math.pi * done)))
        return ops.where(step < self.warmup_steps, warming_up, decaying)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def nanogpt_schedule(learning_rate, total_steps, warmup_steps=100):
    """nanoGPT's learning-rate schedule for Keras optimizers: a `NanoGPTSchedule`."""
    return NanoGPTSchedule(learning_rate, total_steps, warmup_steps)
