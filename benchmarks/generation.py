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
its context widened to 320 so that prompt and continuation fit (`--context`
sets it; GPT-2's own is 1,024), and derives:

* tokens/s and mean latency per token of the whole call, prompt included;
* the latency of tokens 2-33 and of the last 32 tokens, each as the
  difference of two calls that differ by 32 tokens (`generate` to 1 and 33
  tokens, to 224 and 256), and their ratio: flat (about 1) means the cost of
  a token does not grow with the prefix, which is what the cache is for.

Decoding is greedy, or sampled with `--temperature` (and `--top-k`). With
`--implementations keras_tx,transformers` the same model, built as Hugging
Face's `GPT2LMHeadModel` (PyTorch, its own `generate` and cache), runs beside
keras_tx, and the per-token latency of keras_tx's cached generation is
compared with it round by round.

Run it:

    python -m benchmarks generation --rounds 3 --out generation.json
    python -m benchmarks generation --shape large --rounds 2 --out generation-large.json
    python -m benchmarks generation --shape gpt2_small --context 1024 --backends torch,jax \
        --implementations keras_tx,transformers --prompt-length 16 --new-tokens 48 --window 8
"""

import time

import numpy as np

from benchmarks import harness, training

CONTEXT = 320
QUICK = {"shape": "tiny", "prompt_length": 4, "new_tokens": 4, "window": 1, "rounds": 2}


def model_of(shape, context=CONTEXT):
    """The GPT of a training shape, without its batch size, with a `context`-token context.

    >>> model_of("cpu")
    {'vocab_size': 65, 'max_length': 320, 'embed_dim': 128, 'num_heads': 4, 'num_layers': 4}
    """
    model = {**training.SHAPES[shape], "max_length": context}
    del model["batch_size"]
    return model


MODES = {"cache": True, "recompute": False}


IMPLEMENTATIONS = ("keras_tx", "transformers")


def transformers_gpt2(model):
    """Hugging Face's `GPT2LMHeadModel` with the layout of `keras_tx.GPT(**model)`.

    Same parameter count: learned positions, pre-norm blocks, exact GELU,
    biases everywhere, the output projection tied to the token embedding.
    On the GPU when PyTorch sees one.
    """
    import torch
    import transformers

    config = transformers.GPT2Config(
        vocab_size=model["vocab_size"], n_positions=model["max_length"],
        n_embd=model["embed_dim"], n_head=model["num_heads"], n_layer=model["num_layers"],
        n_inner=4 * model["embed_dim"], activation_function="gelu", layer_norm_epsilon=1e-5,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return transformers.GPT2LMHeadModel(config).eval().to(device)


class Job:
    """Worker side: one GPT, timing greedy generation with and without the cache.

    `implementation` is "keras_tx" (`GPT.generate`, on the worker's backend)
    or "transformers" (`GPT2LMHeadModel.generate`, PyTorch).
    """

    def __init__(self, model, prompt_length, new_tokens, window, implementation="keras_tx",
                 modes=tuple(MODES), seed=0, temperature=0.0, top_k=None):
        self.prompt = np.random.default_rng(seed).integers(
            0, model["vocab_size"], (1, prompt_length), dtype="int32")
        self.temperature, self.top_k = temperature, top_k
        if implementation == "transformers":
            self.model = transformers_gpt2(model)
            parameters = self.model.num_parameters()
        else:
            from keras_tx import GPT

            self.model = GPT(**model)
            self.model.build((1, None))
            parameters = self.model.count_params()
        self.implementation = implementation
        self.modes = modes
        # Four calls; the windows are differences of two of them.
        self.lengths = (1, 1 + window, new_tokens - window, new_tokens)
        self.run()  # warm-up: traces every shape a run will meet
        self.info = {"parameters": parameters, "peak_rss_mb": harness.peak_rss_mb()}

    def _generate(self, new_tokens, use_cache):
        if self.implementation == "keras_tx":
            return self.model.generate(self.prompt, new_tokens, temperature=self.temperature, top_k=self.top_k,
                                       seed=0, use_cache=use_cache)
        import torch

        prompt = torch.from_numpy(self.prompt).long().to(self.model.device)
        sampling = {"do_sample": False}
        if self.temperature > 0:  # top_k=0: no top-k filter (transformers' default is 50)
            sampling = {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k or 0}
        tokens = self.model.generate(prompt, attention_mask=torch.ones_like(prompt), **sampling,
                                     max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                     use_cache=use_cache, pad_token_id=0)
        return tokens.cpu().numpy()  # like keras_tx: the tokens on the host

    def _seconds(self, new_tokens, use_cache):
        start = time.perf_counter()
        self._generate(new_tokens, use_cache)
        return time.perf_counter() - start

    def run(self):
        """{mode: {str(new_tokens): seconds}}, the modes ("cache", "recompute") back to back."""
        return {mode: {str(n): self._seconds(n, MODES[mode]) for n in self.lengths}
                for mode in self.modes}


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
    parser.add_argument("--context", type=int, default=CONTEXT,
                        help=f"the model's max_length (default: {CONTEXT})")
    parser.add_argument("--prompt-length", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--window", type=int, default=32,
                        help="tokens in the first and last latency windows (default: 32)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0 (the default) decodes greedily; above 0, tokens are sampled")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    parser.add_argument("--implementations", default="keras_tx",
                        help="comma-separated from keras_tx, transformers (default: keras_tx)")


def start_workers(args, model):
    """One warmed-up worker per keras_tx backend, and one for `transformers` if asked."""
    implementations = tuple(args.implementations.split(","))
    unknown = [name for name in implementations if name not in IMPLEMENTATIONS]
    if unknown:
        raise ValueError(f"--implementations: unknown {unknown[0]!r}; choose from {', '.join(IMPLEMENTATIONS)}")
    config = {"model": model, "prompt_length": args.prompt_length, "new_tokens": args.new_tokens,
              "window": args.window, "temperature": args.temperature, "top_k": args.top_k}
    specs = [("benchmarks.generation", {**config, "implementation": "keras_tx"}, backend,
              f"keras_tx[{backend}]") for backend in args.backends if "keras_tx" in implementations]
    if "transformers" in implementations:
        specs.append(("benchmarks.generation", {**config, "implementation": "transformers"}, "torch",
                      "transformers"))
    return harness.start(*specs, threads=args.threads)


def compare(derived, labels):
    """Per round: each model's cache over its recomputation, and keras_tx's cache over transformers'."""
    def speed(name):
        return [d["tokens_per_second"] for d in derived[name]]

    ratios = {f"{label} cache/recompute": harness.paired_ratio(speed(f"{label} cache"),
                                                                speed(f"{label} recompute"))
              for label in labels}
    if "transformers" in labels:
        ratios.update({f"{label} cache/transformers cache": harness.paired_ratio(
            speed(f"{label} cache"), speed("transformers cache"))
            for label in labels if label != "transformers"})
    return ratios


def main(args):
    if not 1 <= args.window <= (args.new_tokens - 1) // 2:
        raise ValueError(f"--window must be between 1 and (new_tokens - 1) / 2 = "
                         f"{(args.new_tokens - 1) // 2}, got {args.window}")
    model = model_of(args.shape, args.context)
    if args.prompt_length + args.new_tokens > model["max_length"]:
        raise ValueError(f"--prompt-length + --new-tokens must be at most "
                         f"{model['max_length']}, got {args.prompt_length + args.new_tokens}")
    workers = start_workers(args, model)
    try:
        runs = harness.interleave(workers, args.rounds)
    finally:
        harness.close_all(workers)

    derived = {f"{label} {mode}": [derive(run[mode], args.new_tokens, args.window)
                                   for run in samples]
               for label, samples in runs.items() for mode in MODES}
    summary = {label: {key: harness.summarize([d[key] for d in values]) for key in values[0]}
               for label, values in derived.items()}
    speedups = compare(derived, list(runs))

    decoding = "Greedy" if args.temperature == 0 else f"Sampled (temperature {args.temperature}, top-k {args.top_k})"
    print(f"\n{decoding} generation of {args.new_tokens} tokens from a {args.prompt_length}-token "
          f"prompt, model {model}")
    print(harness.format_table(
        ["model", "tokens/s", "ms/token", f"first {args.window} ms/token",
         f"last {args.window} ms/token", "last/first"],
        [[label, s["tokens_per_second"]["median"], s["ms_per_token"]["median"],
          s["first_window_ms_per_token"]["median"], s["last_window_ms_per_token"]["median"],
          s["last_over_first"]["median"]] for label, s in summary.items()]))
    print(harness.format_table(
        ["speed ratio, tokens/s (per round)", "median", "min", "max"],
        [[label, r["median"], r["min"], r["max"]] for label, r in speedups.items()]))
    config = {"shape": args.shape, "context": args.context, "model": model, "prompt_length": args.prompt_length,
              "new_tokens": args.new_tokens, "window": args.window, "rounds": args.rounds,
              "backends": args.backends, "implementations": args.implementations,
              "temperature": args.temperature, "top_k": args.top_k, "threads": args.threads}
    results = {"workers": {w.label: w.info for w in workers}, "runs": runs, "derived": derived}
    return harness.write_report(args.out, "generation", config, results,
                                {"per_model": summary, "ratios": speedups})
