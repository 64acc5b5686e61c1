"""Generation: tokens/s and per-token latency of `GPT.generate`, with and without its KV cache.

With the cache each new token costs one attention step over the cached keys
and values; without it (`use_cache=False`) every step recomputes the whole
prefix, so each token costs more than the one before. Both run compiled where
the backend compiles (`predict_on_batch`: XLA on JAX, a graph on TensorFlow;
eager on PyTorch): the warm-up compiles the cached step once and the
recomputation once per prefix length. The benchmark times
`generate` from a 64-token prompt to 256 new tokens on each backend, with the
model of a training shape (`--shape`: nanoGPT's "CPU" model, 4 layers, 4
heads, 128 dims, by default; or the large one, 6 layers, 6 heads, 384 dims),
its context widened to 320 so that prompt and continuation fit, and derives:

* tokens/s and mean latency per token of the whole call, prompt included;
* the latency of tokens 2-33 and of the last 32 tokens, each as the
  difference of two calls that differ by 32 tokens (`generate` to 1 and 33
  tokens, to 224 and 256), and their ratio: flat (about 1) means the cost of
  a token does not grow with the prefix, which is what the cache is for.

Run it:

    python -m benchmarks generation --rounds 3 --out generation.json
    python -m benchmarks generation --shape large --rounds 2 --out generation-large.json
"""

import time

import numpy as np

from benchmarks import harness, training

CONTEXT = 320
QUICK = {"shape": "tiny", "prompt_length": 4, "new_tokens": 4, "window": 1, "rounds": 2}


def model_of(shape):
    """The GPT of a training shape, without its batch size, with a 320-token context.

    >>> model_of("cpu")
    {'vocab_size': 65, 'max_length': 320, 'embed_dim': 128, 'num_heads': 4, 'num_layers': 4}
    """
    model = {**training.SHAPES[shape], "max_length": CONTEXT}
    del model["batch_size"]
    return model


MODES = {"cache": True, "recompute": False}


class Job:
    """Worker side: one keras_tx GPT, timing `generate` with and without the cache."""

    def __init__(self, model, prompt_length, new_tokens, window, seed=0):
        from keras_tx import GPT

        self.model = GPT(**model)
        self.prompt = np.random.default_rng(seed).integers(
            0, model["vocab_size"], (1, prompt_length), dtype="int32")
        # Four calls; the windows are differences of two of them.
        self.lengths = (1, 1 + window, new_tokens - window, new_tokens)
        self.run()  # warm-up: traces every shape a run will meet
        self.info = {"parameters": self.model.count_params(),
                     "peak_rss_mb": harness.peak_rss_mb()}

    def _seconds(self, new_tokens, use_cache):
        start = time.perf_counter()
        self.model.generate(self.prompt, new_tokens, seed=0, use_cache=use_cache)
        return time.perf_counter() - start

    def run(self):
        """{mode: {str(new_tokens): seconds}}, the two modes back to back."""
        return {mode: {str(n): self._seconds(n, use_cache) for n in self.lengths}
                for mode, use_cache in MODES.items()}


def derive(seconds, new_tokens, window):
    """Throughput and latencies from one run's {str(length): seconds} timings.

    >>> timings = {"1": 0.1, "3": 0.3, "6": 0.6, "8": 0.9}
    >>> round(derive(timings, new_tokens=8, window=2)["last_over_first"], 3)
    1.5
    """
    first = (seconds[str(1 + window)] - seconds["1"]) / window
    last = (seconds[str(new_tokens)] - seconds[str(new_tokens - window)]) / window
    total = seconds[str(new_tokens)]
    return {"tokens_per_second": new_tokens / total, "ms_per_token": 1000 * total / new_tokens,
            "first_window_ms_per_token": 1000 * first, "last_window_ms_per_token": 1000 * last,
            "last_over_first": last / first}


def add_arguments(parser):
    parser.add_argument("--shape", default="cpu", choices=tuple(training.SHAPES),
                        help="model shape, as in the training benchmark (default: cpu)")
    parser.add_argument("--prompt-length", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--window", type=int, default=32,
                        help="tokens in the first and last latency windows (default: 32)")


def main(args):
    if not 1 <= args.window <= (args.new_tokens - 1) // 2:
        raise ValueError(f"--window must be between 1 and (new_tokens - 1) / 2 = "
                         f"{(args.new_tokens - 1) // 2}, got {args.window}")
    model = model_of(args.shape)
    if args.prompt_length + args.new_tokens > model["max_length"]:
        raise ValueError(f"--prompt-length + --new-tokens must be at most "
                         f"{model['max_length']}, got {args.prompt_length + args.new_tokens}")
    workers = harness.start(*[
        ("benchmarks.generation",
         {"model": model, "prompt_length": args.prompt_length,
          "new_tokens": args.new_tokens, "window": args.window},
         backend, f"keras_tx[{backend}]")
        for backend in args.backends], threads=args.threads)
    try:
        runs = harness.interleave(workers, args.rounds)
    finally:
        harness.close_all(workers)

    derived = {f"{label} {mode}": [derive(run[mode], args.new_tokens, args.window)
                                   for run in samples]
               for label, samples in runs.items() for mode in MODES}
    summary = {label: {key: harness.summarize([d[key] for d in values]) for key in values[0]}
               for label, values in derived.items()}
    speedups = {label: harness.paired_ratio(
        [d["tokens_per_second"] for d in derived[f"{label} cache"]],
        [d["tokens_per_second"] for d in derived[f"{label} recompute"]])
        for label in runs}

    print(f"\nGeneration of {args.new_tokens} tokens from a {args.prompt_length}-token "
          f"prompt, model {model}")
    print(harness.format_table(
        ["model", "tokens/s", "ms/token", f"first {args.window} ms/token",
         f"last {args.window} ms/token", "last/first"],
        [[label, s["tokens_per_second"]["median"], s["ms_per_token"]["median"],
          s["first_window_ms_per_token"]["median"], s["last_window_ms_per_token"]["median"],
          s["last_over_first"]["median"]] for label, s in summary.items()]))
    print(harness.format_table(
        ["cache speed-up (per round)", "median", "min", "max"],
        [[label, r["median"], r["min"], r["max"]] for label, r in speedups.items()]))
    config = {"shape": args.shape, "model": model, "prompt_length": args.prompt_length,
              "new_tokens": args.new_tokens, "window": args.window, "rounds": args.rounds,
              "backends": args.backends, "threads": args.threads}
    results = {"workers": {w.label: w.info for w in workers}, "runs": runs, "derived": derived}
    return harness.write_report(args.out, "generation", config, results,
                                {"per_model": summary, "cache_speedup": speedups})
