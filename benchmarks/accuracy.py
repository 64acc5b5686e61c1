"""Accuracy at equal compute: nanoGPT's CPU recipe on Tiny Shakespeare characters.

nanoGPT's published CPU run trains its GPT (4 layers, 4 heads, 128 dims,
context 64) for 2000 steps of batch 12 with AdamW and reaches a validation
loss of 1.88. This benchmark trains keras_tx's `GPT` on each backend, and the
native-PyTorch GPT of the same shape, on the very same batches with the same
recipe (`training.Trainer`): then reports the final validation and training
loss and the wall time of the training, compilation included. One round is
one training from fresh random weights.

The text file is a required argument (the benchmark never downloads):

    python -m benchmarks accuracy --data path/to/tinyshakespeare.txt --out accuracy.json
"""

import os
import tempfile
import time

import numpy as np

from benchmarks import harness, training

QUICK = {"shape": "tiny", "steps": 4, "eval_batches": 2}
NANOGPT_CPU_VAL_LOSS = 1.88


def sample_windows(token_ids, count, length, rng):
    """`count` random windows of `length + 1` tokens, split into (inputs, targets).

    >>> inputs, targets = sample_windows(np.arange(10), 2, 3, np.random.default_rng(0))
    >>> (targets - inputs).tolist()
    [[1, 1, 1], [1, 1, 1]]
    """
    starts = rng.integers(0, len(token_ids) - length, count)
    windows = np.stack([token_ids[start:start + length + 1] for start in starts])
    return windows[:, :-1], windows[:, 1:]


def prepare_data(path, directory, steps, batch_size, length, eval_batches, seed=0):
    """Tokenize the text, sample every batch of the run, save them for the workers.

    Returns the `.npz` path and the vocabulary size.
    """
    from keras_tx_tools.data import CharTokenizer, split_text, tiny_shakespeare

    text = tiny_shakespeare(path).text
    tokenizer = CharTokenizer.from_text(text)
    train, validation = (tokenizer.encode(part) for part in split_text(text))
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, ids, count in (("train", train, steps * batch_size),
                             ("train_eval", train, eval_batches * batch_size),
                             ("validation", validation, eval_batches * batch_size)):
        if len(ids) <= length:
            raise ValueError(f"--data: the text is too short for windows of {length + 1} "
                             f"characters in its 10% validation part")
        arrays[f"{name}_inputs"], arrays[f"{name}_targets"] = sample_windows(ids, count, length, rng)
    data_path = os.path.join(directory, "batches.npz")
    np.savez(data_path, **{key: value.astype("int32") for key, value in arrays.items()})
    return data_path, tokenizer.vocab_size


class Job:
    """Worker side: each run trains one implementation from fresh random weights."""

    def __init__(self, implementation, dims, batch_size, data, learning_rate):
        training.import_framework(implementation)
        self.implementation, self.dims, self.batch_size = implementation, dims, batch_size
        self.learning_rate = learning_rate
        self.data = dict(np.load(data))
        self.info = {}

    def run(self):
        steps = len(self.data["train_inputs"]) // self.batch_size
        start = time.perf_counter()
        trainer = training.Trainer(self.implementation, self.dims, self.batch_size, steps,
                                   peak_learning_rate=self.learning_rate)
        trainer.fit(self.data["train_inputs"], self.data["train_targets"])
        seconds = time.perf_counter() - start
        return {"train_seconds": seconds,
                "validation_loss": trainer.loss(self.data["validation_inputs"],
                                                self.data["validation_targets"]),
                "train_loss": trainer.loss(self.data["train_eval_inputs"],
                                           self.data["train_eval_targets"]),
                "parameters": trainer.parameter_count}


def add_arguments(parser):
    parser.add_argument("--data", required=True,
                        help="the Tiny Shakespeare text file (tinyshakespeare.txt)")
    parser.add_argument("--shape", default="cpu", choices=tuple(training.SHAPES),
                        help="model and batch shape (default: nanoGPT's cpu recipe)")
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps (default: 2000)")
    parser.add_argument("--learning-rate", type=float, default=training.PEAK_LEARNING_RATE,
                        help="peak learning rate (default: nanoGPT's 1e-3; "
                             "keras-tx train shakespeare-char uses 3e-3)")
    parser.add_argument("--eval-batches", type=int, default=100,
                        help="batches of validation (and of training) text to evaluate on")
    parser.set_defaults(rounds=1)


def main(args):
    if args.steps < 1 or args.eval_batches < 1:
        raise ValueError(f"--steps and --eval-batches must be at least 1, "
                         f"got {args.steps} and {args.eval_batches}")
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be positive, got {args.learning_rate}")
    dims = dict(training.SHAPES[args.shape])
    batch_size = dims.pop("batch_size")
    with tempfile.TemporaryDirectory() as directory:
        data, dims["vocab_size"] = prepare_data(args.data, directory, args.steps, batch_size,
                                                dims["max_length"], args.eval_batches)
        workers = harness.start(*[
            ("benchmarks.accuracy", {"implementation": implementation, "dims": dims,
                                     "batch_size": batch_size, "data": data,
                                     "learning_rate": args.learning_rate}, backend, label)
            for implementation, backend, label in
            [("keras_tx", b, f"keras_tx[{b}]") for b in args.backends]
            + [("native_torch", "torch", "native_torch")]], threads=args.threads)
        try:  # one training at a time: each has the whole machine
            runs = harness.interleave(workers, args.rounds)
        finally:
            harness.close_all(workers)
    summary = {label: {key: harness.summarize([r[key] for r in samples])
                       for key in ("validation_loss", "train_loss", "train_seconds")}
               for label, samples in runs.items()}
    print(f"\nTiny Shakespeare characters, {args.steps} steps of {batch_size} x "
          f"{dims['max_length']} tokens, peak learning rate {args.learning_rate}, model {dims}; "
          f"nanoGPT's CPU figure (at 1e-3): "
          f"val loss {NANOGPT_CPU_VAL_LOSS}")
    print(harness.format_table(
        ["model", "val loss", "train loss", "train seconds"],
        [[label, s["validation_loss"]["median"], s["train_loss"]["median"],
          s["train_seconds"]["median"]] for label, s in summary.items()]))
    config = {"data": os.path.basename(args.data), "dims": dims, "batch_size": batch_size,
              "steps": args.steps, "learning_rate": args.learning_rate,
              "eval_batches": args.eval_batches, "rounds": args.rounds,
              "backends": args.backends, "threads": args.threads}
    return harness.write_report(args.out, "accuracy", config, runs, summary)
