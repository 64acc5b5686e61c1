"""Training runs: the tasks, their callbacks, pictures and text generation.

- `tasks`: data, model and results of each `keras-tx train` task;
- `callbacks`: per-epoch text sample, stop on Ctrl-C, `metrics.json`;
- `plots`: `loss.png` and `attention.png`;
- `recipe`: nanoGPT's AdamW and learning-rate schedule;
- `loss`: the cross-entropy every run trains with;
- `text_generation`: a model and tokenizer continue a text prompt.

A saved `model.keras` names the loss and the schedule it was compiled with;
importing this package registers both, so that `keras.saving.load_model` finds them.
"""

from keras_tx_tools.training import loss, recipe  # noqa: F401  (registers them with Keras)
