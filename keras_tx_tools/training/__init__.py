"""Training runs: the tasks, their callbacks, pictures and text generation.

- `tasks`: data, model and results of each `keras-tx train` task;
- `callbacks`: per-epoch text sample, stop on Ctrl-C, `metrics.json`;
- `plots`: `loss.png` and `attention.png`;
- `recipe`: nanoGPT's AdamW and learning-rate schedule;
- `loss`: the cross-entropy every run trains with;
- `text_generation`: a model and tokenizer continue a text prompt.
"""
