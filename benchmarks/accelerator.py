"""The accelerator table: keras_tx on a GPU against plain PyTorch and Hugging Face `transformers`.

One command measures, on the machine's first GPU:

* **training** throughput (tokens/s of optimizer steps, nanoGPT's recipe as
  in `benchmarks.training`) at GPT-2 small (124M parameters, batch 16 x
  1,024 tokens) and at nanoGPT's Tiny Shakespeare GPU shape (10.8M, 64 x
  256), in mixed bfloat16 and in float32: native eager PyTorch, native
  PyTorch under `torch.compile` (mixed bfloat16 at GPT-2 small, where it
  matters most), keras_tx on PyTorch and keras_tx on JAX;
* **generation** at GPT-2 small, batch 1, greedy, 128 new tokens after a
  64-token prompt, in ms per token: keras_tx (KV cache) on PyTorch and JAX
  against `transformers`' `GPT2LMHeadModel.generate` with its cache.

"float32" means IEEE float32 matrix products: TF32 is switched off in
PyTorch (`torch.backends.cuda.matmul.allow_tf32 = False`) and JAX's default
matmul precision is set to "highest" (on a GPU JAX would otherwise use TF32).
"mixed bfloat16" is Keras' `mixed_bfloat16` policy and `torch.autocast` with
bfloat16: bfloat16 products, float32 weights, loss and softmax.

The GPU is not shared, so the contenders run one after another (one process
each, so that each has the whole GPU memory), each warmed up first (tracing,
XLA or `torch.compile` compilation), then `--rounds` timed repetitions. A
contender that would start after `--minutes` is skipped and listed as such, so
that the whole table takes about that long (6 minutes by default on an H200).
TensorFlow is left out: `tensorflow-cpu`, the build the `tensorflow` extra
installs, cannot use a GPU. `--backends` picks the Keras backends of keras_tx;
the baselines (native PyTorch, `transformers`) have none and always run.

Run it:

    python -m benchmarks accelerator --out accelerator.json
    python -m benchmarks accelerator --quick    # a CPU smoke run of the same code, tiny shapes
"""

import importlib.util
import os
import time

from benchmarks import generation, harness, training

BACKENDS = ("torch", "jax")
"""The Keras backends measured (see the module docstring for TensorFlow)."""

CONTENDERS = {
    # label: (implementation, Keras backend, compiled)
    "native_torch": ("native_torch", "torch", False),
    "native_torch[compile]": ("native_torch", "torch", True),
    "keras_tx[torch]": ("keras_tx", "torch", False),
    "keras_tx[jax]": ("keras_tx", "jax", False),
}
COMPILED_ROWS = {("gpt2_small", "mixed_bfloat16"), ("tiny", "float32")}
"""Where `torch.compile` of the native model is measured too (it compiles for a minute;
the tiny row is the smoke run's)."""

PRECISIONS = ("mixed_bfloat16", "float32")
QUICK = {"shapes": "tiny", "generation_shape": "tiny", "steps": 1, "rounds": 1,
         "prompt_length": 4, "new_tokens": 8, "window": 1}


def pin_float32_matmuls():
    """Make float32 matrix products IEEE float32 (no TF32) in the backend of this process."""
    if os.environ.get("KERAS_BACKEND") == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    else:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def device_name():
    """The device this worker computes on, in words."""
    if os.environ.get("KERAS_BACKEND") == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


class Job(training.Job):
    """`training.Job` with float32 pinned, reporting its device."""

    def __init__(self, **config):
        pin_float32_matmuls()
        super().__init__(**config)
        self.info["device"] = device_name()


class GenerationJob(generation.Job):
    """`generation.Job` with float32 pinned, reporting its device."""

    def __init__(self, **config):
        pin_float32_matmuls()
        super().__init__(**config)
        self.info["device"] = device_name()


class Clock:
    """Says whether there is time left to start another contender; lists those skipped.

    >>> skipped = []
    >>> Clock(minutes=1).allows("keras_tx[jax] gpt2_small float32", skipped)
    True
    >>> Clock(minutes=0).allows("keras_tx[jax] generation", skipped), skipped
    (False, ['keras_tx[jax] generation'])
    """

    def __init__(self, minutes):
        self.deadline = time.monotonic() + 60 * minutes

    def allows(self, label, skipped):
        if time.monotonic() < self.deadline:
            return True
        skipped.append(label)
        return False


def measure(label, job, config, backend, args):
    """Start one worker, warm it up, time `args.rounds` repetitions, stop it."""
    print(f"{label}: warming up", flush=True)
    (worker,) = harness.start((f"benchmarks.accelerator:{job}", config, backend, label),
                              threads=args.threads)
    try:
        return {"info": worker.info, "runs": harness.interleave([worker], args.rounds)[label]}
    finally:
        worker.close()


def training_rows(args, backends, clock, skipped):
    """{"SHAPE PRECISION": {label: {"info", "runs"}}} for every row of the table."""
    rows = {}
    for shape in args.shapes.split(","):
        for precision in PRECISIONS:
            row = rows[f"{shape} {precision}"] = {}
            for label, (implementation, backend, compiled) in CONTENDERS.items():
                if implementation == "keras_tx" and backend not in backends:
                    continue  # native PyTorch, the baseline, has no Keras backend: always measured
                if compiled and (shape, precision) not in COMPILED_ROWS:
                    continue
                name = f"{label} {shape} {precision}"
                if clock.allows(name, skipped):
                    config = {"implementation": implementation, "shape": shape, "precision": precision,
                              "compiled": compiled, "steps": args.steps or training.DEFAULT_STEPS[shape]}
                    row[label] = measure(name, "Job", config, backend, args)
    return rows


def generation_row(args, backends, clock, skipped):
    """{label: {"info", "runs"}}: cached greedy generation, keras_tx and transformers."""
    config = {"model": generation.model_of(args.generation_shape), "prompt_length": args.prompt_length,
              "new_tokens": args.new_tokens, "window": args.window, "modes": ["cache"]}
    contenders = [(f"keras_tx[{backend}]", "keras_tx", backend) for backend in backends]
    if importlib.util.find_spec("transformers"):
        contenders.append(("transformers", "transformers", "torch"))
    row = {}
    for label, implementation, backend in contenders:
        if clock.allows(f"{label} generation", skipped):
            row[label] = measure(f"{label} generation", "GenerationJob",
                                 {**config, "implementation": implementation}, backend, args)
    return row


def summarize(rows, generated, args):
    """Medians and, per row, every contender's speed over native eager PyTorch's (or transformers')."""
    summary = {"training": {}, "generation": {}}
    for name, row in rows.items():
        speed = {label: harness.summarize([r["tokens_per_second"] for r in m["runs"]])["median"]
                 for label, m in row.items()}
        summary["training"][name] = {label: {"tokens_per_second": value,
                                             "over_native": value / speed["native_torch"]
                                             if "native_torch" in speed else None}
                                     for label, value in speed.items()}
    latency = {label: harness.summarize([generation.derive(r["cache"], args.new_tokens, args.window)
                                         ["ms_per_token"] for r in m["runs"]])["median"]
               for label, m in generated.items()}
    summary["generation"] = {label: {"ms_per_token": value,
                                     "over_transformers": value / latency["transformers"]
                                     if "transformers" in latency else None}
                             for label, value in latency.items()}
    return summary


def add_arguments(parser):
    parser.add_argument("--shapes", default="gpt2_small,shakespeare_gpu",
                        help="training shapes, from benchmarks.training (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps per repetition (default: per shape)")
    parser.add_argument("--generation-shape", default="gpt2_small", choices=tuple(training.SHAPES))
    parser.add_argument("--prompt-length", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=6.0,
                        help="start no contender after this many minutes (default: %(default)s)")
    parser.set_defaults(rounds=3)


def main(args):
    training.parse_shapes(args.shapes)
    backends = [backend for backend in args.backends if backend in BACKENDS]
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # JAX takes GPU memory as it needs it
    clock, skipped = Clock(args.minutes), []
    rows = training_rows(args, backends, clock, skipped)
    generated = generation_row(args, backends, clock, skipped)
    summary = summarize(rows, generated, args)
    summary["skipped"] = skipped
    print_summary(summary)
    config = {"shapes": {s: training.SHAPES[s] for s in args.shapes.split(",")},
              "generation_model": generation.model_of(args.generation_shape),
              "prompt_length": args.prompt_length, "new_tokens": args.new_tokens,
              "rounds": args.rounds, "steps": args.steps, "backends": backends,
              "float32": "IEEE float32 matmuls (TF32 off; JAX precision 'highest')"}
    return harness.write_report(args.out, "accelerator", config,
                                {"training": rows, "generation": generated}, summary)


def print_summary(summary):
    for name, row in summary["training"].items():
        print(f"\nTraining, {name}")
        print(harness.format_table(["model", "tokens/s", "x native eager"],
                                   [[label, s["tokens_per_second"], s["over_native"] or "-"]
                                    for label, s in row.items()]))
    print("\nGeneration, batch 1, greedy, cached")
    print(harness.format_table(["model", "ms/token", "x transformers (time)"],
                               [[label, s["ms_per_token"], s["over_transformers"] or "-"]
                                for label, s in summary["generation"].items()]))
    if summary["skipped"]:
        print("\nSkipped (out of time): " + ", ".join(summary["skipped"]))
