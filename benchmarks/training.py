"""Training throughput: tokens per second of optimizer steps, keras_tx against its rivals.

Three implementations of one GPT, identical in shape and parameter count:
`keras_tx` (`keras_tx.GPT`), `stock_keras` (`StockKerasGPT`, stock Keras
layers) and `native_torch` (`NativeTorchGPT`, eager PyTorch). The Keras models
train the way users train them, `model.compile` with Keras' own
`SparseCategoricalCrossentropy(from_logits=True)` and the backend's default
`jit_compile`, then `model.fit`; the PyTorch model with the usual hand-written
loop. All use nanoGPT's recipe (`keras_tx_tools.training.recipe`): AdamW (betas
0.9/0.99, epsilon 1e-8, weight decay 0.1 on matrices and embeddings only),
gradients clipped to a global norm of 1, linear warm-up then cosine decay.

Each (implementation, backend) pair runs in its own process; one repetition is
`--steps` optimizer steps on fixed random batches, after one repetition of
warm-up (tracing and compilation). Repetitions are interleaved across the
processes, round after round, and the ratios keras_tx/native and
keras_tx/stock Keras are taken round by round.

Run it:

    python -m benchmarks training --shapes cpu,large --rounds 5 --out training.json
"""

import importlib
import math
import time

import numpy as np

from benchmarks import harness

SHAPES = {
    "tiny": dict(vocab_size=65, max_length=16, embed_dim=32, num_heads=2,
                 num_layers=1, batch_size=2),
    # nanoGPT's "CPU" recipe for Tiny Shakespeare characters.
    "cpu": dict(vocab_size=65, max_length=64, embed_dim=128, num_heads=4,
                num_layers=4, batch_size=12),
    "large": dict(vocab_size=65, max_length=256, embed_dim=384, num_heads=6,
                  num_layers=6, batch_size=16),
    # GPT-2's vocabulary (50,257 padded to 50,304) on a small model: the loss
    # over 50,304 classes is a large part of a step, on CPU as on a GPU.
    "gpt2_vocab": dict(vocab_size=50304, max_length=128, embed_dim=128, num_heads=4,
                       num_layers=2, batch_size=8),
    # The accelerator shapes (`benchmarks.accelerator`): GPT-2 small, and
    # nanoGPT's Tiny Shakespeare configuration for a GPU.
    "gpt2_small": dict(vocab_size=50304, max_length=1024, embed_dim=768, num_heads=12,
                       num_layers=12, batch_size=16),
    "shakespeare_gpu": dict(vocab_size=65, max_length=256, embed_dim=384, num_heads=6,
                            num_layers=6, batch_size=64),
    # `benchmarks.distribution`: the "cpu" shape with 8 heads of 16 dimensions and a batch
    # of 16, so that the heads, the MLP and the batch all split 8 ways.
    "cpu_8_heads": dict(vocab_size=65, max_length=64, embed_dim=128, num_heads=8,
                        num_layers=4, batch_size=16),
}
DEFAULT_STEPS = {"tiny": 2, "cpu": 30, "large": 5, "gpt2_vocab": 5, "gpt2_small": 10,
                 "shakespeare_gpu": 20, "cpu_8_heads": 10}
IMPLEMENTATIONS = ("keras_tx", "stock_keras", "native_torch")
PRECISIONS = ("float32", "mixed_bfloat16")

PEAK_LEARNING_RATE = 1e-3
FINAL_FRACTION = 0.1  # the cosine ends at a tenth of the peak
WARMUP_STEPS = 100
WEIGHT_DECAY = 0.1


def warmup_steps(total_steps):
    """nanoGPT warms up for 100 steps; shorter runs warm up for half their length."""
    return min(WARMUP_STEPS, total_steps // 2)


def learning_rate(step, total_steps, peak=PEAK_LEARNING_RATE):
    """nanoGPT's schedule: linear warm-up to `peak`, cosine decay to `peak / 10` at `total_steps`.

    `keras_tx_tools.training.schedule.nanogpt_schedule` is the same schedule for Keras.

    >>> learning_rate(50, 2000), learning_rate(100, 2000), learning_rate(2000, 2000)
    (0.0005, 0.001, 0.0001)
    """
    warmup = warmup_steps(total_steps)
    if step < warmup:
        return peak * step / warmup
    done = min(step - warmup, total_steps - warmup) / (total_steps - warmup)
    return peak * ((1 - FINAL_FRACTION) * 0.5 * (1 + math.cos(math.pi * done)) + FINAL_FRACTION)


def import_framework(implementation):
    """Import what `Trainer(implementation, ...)` runs on, ahead of any timing."""
    importlib.import_module("torch" if implementation == "native_torch" else "keras_tx")


class Trainer:
    """One GPT implementation with its optimizer: `fit` arrays, measure `loss`.

    Args:
        implementation: "keras_tx", "stock_keras" or "native_torch".
        dims: the model's keyword arguments (vocab_size, max_length, ...).
        batch_size: sequences per optimizer step.
        total_steps: length of the learning-rate schedule.
        peak_learning_rate: the schedule's peak (nanoGPT's 1e-3 by default).
        precision: "float32", or "mixed_bfloat16": bfloat16 compute, float32
            weights (Keras' dtype policy; `torch.autocast` for native PyTorch).
        compiled: Keras' `jit_compile=True` (on PyTorch: `torch.compile`), or
            `torch.compile` of the native model; False leaves Keras' default
            (XLA on JAX and TensorFlow, eager on PyTorch) and PyTorch eager.

    The native model trains on the GPU when PyTorch sees one (Keras picks
    the device itself).

    Example:

    >>> dims = dict(vocab_size=65, max_length=16, embed_dim=32, num_heads=2, num_layers=1)
    >>> trainer = Trainer("native_torch", dims, batch_size=2, total_steps=10)
    >>> x = np.zeros((4, 16), "int32")
    >>> trainer.fit(x, x)
    >>> trainer.loss(x, x) > 0
    True
    """

    def __init__(self, implementation, dims, batch_size, total_steps,
                 peak_learning_rate=PEAK_LEARNING_RATE, precision="float32", compiled=False):
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation={implementation!r}; "
                             f"choose from {', '.join(IMPLEMENTATIONS)}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}; choose from {', '.join(PRECISIONS)}")
        self.implementation = implementation
        self.batch_size = batch_size
        self.precision = precision
        self.compiled = compiled
        build = self._build_torch if implementation == "native_torch" else self._build_keras
        build(dims, total_steps, peak_learning_rate)

    def _build_keras(self, dims, total_steps, peak_learning_rate):
        import keras

        from keras_tx_tools.training.recipe import nanogpt_adamw

        if self.implementation == "keras_tx":
            from keras_tx import GPT as model_class
        else:
            from benchmarks.stock_keras_gpt import StockKerasGPT as model_class
        self.model = model_class(**dims, dtype=self.precision)
        self.model.compile(
            optimizer=nanogpt_adamw(peak_learning_rate, total_steps, WARMUP_STEPS, WEIGHT_DECAY),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True if self.compiled else "auto",
        )

    def _build_torch(self, dims, total_steps, peak_learning_rate):
        import torch

        from benchmarks.native_torch_gpt import NativeTorchGPT

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = NativeTorchGPT(**dims).to(self.device)
        self.forward = torch.compile(self.model) if self.compiled else self.model
        # nanoGPT's `configure_optimizers`: decay the matrices and embeddings only.
        groups = [{"params": [p for p in self.model.parameters() if p.dim() >= 2]},
                  {"params": [p for p in self.model.parameters() if p.dim() < 2],
                   "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=peak_learning_rate,
                                           weight_decay=WEIGHT_DECAY, betas=(0.9, 0.99))
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: learning_rate(step, total_steps, peak=1.0))

    @property
    def parameter_count(self):
        """Number of weights (a Keras model has them once it has been called)."""
        if self.implementation == "native_torch":
            return sum(p.numel() for p in self.model.parameters())
        return self.model.count_params()

    def fit(self, inputs, targets):
        """One optimizer step per `batch_size` consecutive rows of (inputs, targets)."""
        if self.implementation != "native_torch":
            self.model.fit(inputs, targets, batch_size=self.batch_size, shuffle=False,
                           verbose=0)
            return
        import torch

        self.model.train()
        bfloat16 = torch.autocast(self.device.type, torch.bfloat16,
                                  enabled=self.precision == "mixed_bfloat16")
        for x, y in zip(*(torch.from_numpy(a).to(self.device).long().split(self.batch_size)
                          for a in (inputs, targets))):
            with bfloat16:  # (autocast computes the cross-entropy in float32)
                loss = torch.nn.functional.cross_entropy(self.forward(x).flatten(0, 1), y.flatten())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.schedule.step()

    def wait(self):
        """Block until the device has done the queued steps (on a GPU, PyTorch and JAX queue ahead).

        Reading one trained weight back waits for the last step: its update
        depends on every gradient, through the global-norm clipping.
        """
        if self.implementation != "native_torch":
            import keras

            keras.ops.convert_to_numpy(self.model.trainable_weights[0])
        elif self.device.type == "cuda":
            import torch

            torch.cuda.synchronize()

    def loss(self, inputs, targets):
        """Mean next-token cross-entropy over (inputs, targets), without training."""
        if self.implementation != "native_torch":
            return float(self.model.evaluate(inputs, targets, batch_size=self.batch_size,
                                             verbose=0))
        import torch

        self.model.eval()
        with torch.no_grad():
            logits = self.model(torch.from_numpy(inputs).long().to(self.device))
            return torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), torch.from_numpy(targets).long().flatten().to(self.device)).item()


class Job:
    """Worker side: one implementation at one shape, timing `steps` optimizer steps.

    `precision` and `compiled` are `Trainer`'s.
    """

    def __init__(self, implementation, shape, steps, seed=0, precision="float32", compiled=False):
        import_framework(implementation)
        imports_mb = harness.peak_rss_mb()
        dims = dict(SHAPES[shape])
        batch_size = dims.pop("batch_size")
        rng = np.random.default_rng(seed)
        tokens = rng.integers(0, dims["vocab_size"], (steps * batch_size, dims["max_length"] + 1),
                              dtype="int32")
        self.inputs, self.targets = tokens[:, :-1], tokens[:, 1:]
        self.tokens = self.inputs.size
        self.trainer = Trainer(implementation, dims, batch_size, total_steps=10**6,
                               precision=precision, compiled=compiled)
        self.run()  # warm-up: tracing, compilation
        self.info = {"parameters": self.trainer.parameter_count,
                     "peak_rss_after_imports_mb": imports_mb}

    def run(self):
        start = time.perf_counter()
        self.trainer.fit(self.inputs, self.targets)
        self.trainer.wait()
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "tokens_per_second": self.tokens / seconds,
                "peak_rss_mb": harness.peak_rss_mb()}


def measure(shape, steps, backends, implementations, rounds, threads=None):
    """Start one worker per contender, interleave `rounds` repetitions, stop them.

    Returns {"workers": {label: info}, "runs": {label: [answer per round]}}.
    """
    workers = start_workers(shape, steps, backends, implementations, threads)
    try:
        runs = harness.interleave(workers, rounds)
    finally:
        harness.close_all(workers)
    return {"workers": {worker.label: worker.info for worker in workers}, "runs": runs}


def start_workers(shape, steps, backends, implementations, threads=None):
    """One warmed-up worker per (implementation, backend); native PyTorch has no backend."""
    specs = []
    for implementation in implementations:
        for backend in (("torch",) if implementation == "native_torch" else backends):
            label = "native_torch" if implementation == "native_torch" else f"{implementation}[{backend}]"
            specs.append(("benchmarks.training",
                          {"implementation": implementation, "shape": shape, "steps": steps},
                          backend, label))
    return harness.start(*specs, threads=threads)


def summarize_shape(samples, backends):
    """Per-worker tokens/s summaries and, per backend, the round-by-round ratios."""
    speed = {label: [s["tokens_per_second"] for s in runs] for label, runs in samples.items()}
    summary = {"tokens_per_second": {label: harness.summarize(v) for label, v in speed.items()}}
    ratios = {}
    for backend in backends:
        ours, stock = speed.get(f"keras_tx[{backend}]"), speed.get(f"stock_keras[{backend}]")
        if ours and "native_torch" in speed:
            ratios[f"keras_tx[{backend}]/native_torch"] = harness.paired_ratio(ours, speed["native_torch"])
        if ours and stock:
            ratios[f"keras_tx[{backend}]/stock_keras[{backend}]"] = harness.paired_ratio(ours, stock)
        if stock and "native_torch" in speed:
            ratios[f"stock_keras[{backend}]/native_torch"] = harness.paired_ratio(stock, speed["native_torch"])
    summary["ratios"] = ratios
    return summary


QUICK = {"shapes": "tiny", "rounds": 2}


def add_arguments(parser):
    parser.add_argument("--shapes", default="cpu,large",
                        help=f"comma-separated, from {', '.join(SHAPES)} (default: cpu,large)")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS),
                        help="comma-separated subset of " + ", ".join(IMPLEMENTATIONS))
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps per repetition (default: per shape)")


def parse_shapes(text):
    """Comma-separated shape names -> tuple, or a ValueError naming --shapes.

    >>> parse_shapes("cpu,gpt2_vocab")
    ('cpu', 'gpt2_vocab')
    """
    shapes = tuple(text.split(","))
    for shape in shapes:
        if shape not in SHAPES:
            raise ValueError(f"--shapes: unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    return shapes


def check_arguments(args):
    """The parsed --shapes and --implementations as tuples, or a ValueError naming the option."""
    shapes = parse_shapes(args.shapes)
    implementations = tuple(args.implementations.split(","))
    for implementation in implementations:
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"--implementations: unknown {implementation!r}; "
                             f"choose from {', '.join(IMPLEMENTATIONS)}")
    return shapes, implementations


def main(args):
    shapes, implementations = check_arguments(args)
    results, summary = {}, {}
    for shape in shapes:
        steps = args.steps or DEFAULT_STEPS[shape]
        results[shape] = measure(shape, steps, args.backends, implementations, args.rounds,
                                 args.threads)
        summary[shape] = summarize_shape(results[shape]["runs"], args.backends)
        print_summary(shape, steps, summary[shape], results[shape]["workers"])
    config = {"shapes": {s: SHAPES[s] for s in shapes}, "rounds": args.rounds,
              "steps": args.steps, "backends": args.backends, "threads": args.threads}
    return harness.write_report(args.out, "training", config, results, summary)


def print_summary(shape, steps, summary, workers):
    rows = [[label, s["median"], s["spread"], workers[label]["parameters"]]
            for label, s in summary["tokens_per_second"].items()]
    print(f"\nTraining, shape {shape!r} {SHAPES[shape]}, {steps} steps per repetition")
    print(harness.format_table(["model", "tokens/s (median)", "spread", "parameters"], rows))
    rows = [[name, r["median"], r["min"], r["max"]] for name, r in summary["ratios"].items()]
    print(harness.format_table(["ratio (per round)", "median", "min", "max"], rows))
