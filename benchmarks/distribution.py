"""Training over many devices: tokens/s and memory per device on 1, 2, 4 and 8 devices.

keras_tx on JAX, set up exactly as `keras-tx train --distribute` sets it up
(`keras_tx_tools.training.distribute`), at a fixed global batch:

* `data[N]`: `keras.distribution.DataParallel` over N devices: each holds the
  whole model and optimizer, and computes 1/N of the batch;
* `model[N]`: `keras.distribution.ModelParallel` with
  `keras_tx.distribution.gpt_layout_map` on a 1 x N mesh: each device holds
  1/N of the large weights (and of their optimizer moments) and computes its
  share of every layer for the whole batch;
* `one device`: no distribution at all, the baseline.

Each contender is a JAX process of its own with N devices. Without GPUs, the
devices are virtual: XLA splits the CPU
(``--xla_force_host_platform_device_count=N``, set in the worker before JAX
starts). **Virtual devices share the same cores, so on a CPU this measures
the overhead of splitting the work (collectives, smaller kernels), not a
speed-up.** On a machine with N accelerators, the same command measures the
real thing.

Memory per device is what the model's weights and the optimizer's moments
occupy on the first device (from the shardings of the variables), and, where
the device reports it (GPUs, TPUs), the peak memory it had in use.

Run it:

    python -m benchmarks distribution --rounds 3 --out distribution.json
"""

import os

from benchmarks import harness, training

QUICK = {"shape": "tiny", "devices": "1,2", "steps": 1, "rounds": 1}
BASELINE = "one device"


class Job(training.Job):
    """`training.Job` of keras_tx on JAX with `devices` devices, under `parallelism` ("data", "model" or None)."""

    def __init__(self, devices, parallelism, shape, steps):
        # Before JAX starts (it reads the flags once), and first: XLA stops at a word it cannot parse.
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices} {flags}".strip()
        import jax
        import keras

        from keras_tx_tools.training import distribute

        dims = training.SHAPES[shape]
        config = {**dims, "ff_dim": None}
        if jax.device_count() != devices:  # a machine with accelerators has as many as it has
            raise ValueError(f"asked for {devices} devices, JAX sees {jax.device_count()}")
        distribute.set_distribution(parallelism, None, config)
        super().__init__("keras_tx", shape, steps)
        distribution = keras.distribution.distribution()
        self.info.update(devices=devices, device_kind=jax.devices()[0].device_kind,
                         state_mb_per_device=state_mb(self.trainer.model, jax.devices()[0]),
                         distribution=distribution and type(distribution).__name__)

    def run(self):
        import jax

        answer = super().run()
        answer["device_peak_mb"] = (jax.devices()[0].memory_stats() or {}).get("peak_bytes_in_use", 0) / 2**20 or None
        return answer


def state_mb(model, device):
    """MiB that the weights and optimizer variables of `model` occupy on `device`."""
    variables = [*model.variables, *model.optimizer.variables]
    return sum(shard.data.nbytes for variable in variables for shard in variable.value.addressable_shards
               if shard.device == device) / 2**20


def contenders(device_counts):
    """(label, devices, parallelism): the baseline, then data and model parallel per device count.

    >>> [label for label, _, _ in contenders([1, 2])]
    ['one device', 'data[2]', 'model[2]']
    """
    rows = [(BASELINE, 1, None)] if 1 in device_counts else []
    return rows + [(f"{kind}[{count}]", count, kind) for kind in ("data", "model")
                   for count in device_counts if count > 1]


def parse_devices(text):
    """`"1,2,4,8"` -> `[1, 2, 4, 8]`, or a ValueError naming --devices."""
    counts = [int(count) for count in text.split(",") if count.isdigit()]
    if len(counts) != len(text.split(",")) or not counts or min(counts) < 1:
        raise ValueError(f"--devices must be positive integers separated by commas, like 1,2,4,8; got {text!r}")
    return counts


def add_arguments(parser):
    parser.add_argument("--devices", default="1,2,4,8", help="device counts (default: %(default)s)")
    parser.add_argument("--shape", default="cpu_8_heads", choices=tuple(training.SHAPES),
                        help="model and global batch, from benchmarks.training (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per repetition (default: per shape)")
    parser.set_defaults(rounds=3)


def main(args):
    if "jax" not in args.backends:
        raise ValueError("the distribution benchmark runs on JAX (Keras' distribution API): use --backends jax")
    rows = contenders(parse_devices(args.devices))
    steps = args.steps or training.DEFAULT_STEPS[args.shape]
    workers = harness.start(*[("benchmarks.distribution", {"devices": devices, "parallelism": kind,
                                                           "shape": args.shape, "steps": steps}, "jax", label)
                              for label, devices, kind in rows], threads=args.threads)
    try:
        runs = harness.interleave(workers, args.rounds)
    finally:
        harness.close_all(workers)
    infos = {worker.label: worker.info for worker in workers}
    summary = summarize(runs, infos)
    print_summary(summary, args.shape)
    config = {"shape": training.SHAPES[args.shape], "steps": steps, "rounds": args.rounds,
              "threads": args.threads, "devices": "virtual CPU devices sharing the cores, unless accelerators"}
    return harness.write_report(args.out, "distribution", config, {"workers": infos, "runs": runs}, summary)


def summarize(runs, infos):
    """Per contender: median tokens/s, its round-by-round ratio to one device, memory per device."""
    speed = {label: [run["tokens_per_second"] for run in samples] for label, samples in runs.items()}
    return {label: {"devices": infos[label]["devices"],
                    "tokens_per_second": harness.summarize(values)["median"],
                    "over_one_device": harness.paired_ratio(values, speed[BASELINE])["median"]
                    if BASELINE in speed else None,
                    "state_mb_per_device": infos[label]["state_mb_per_device"],
                    "device_peak_mb": runs[label][-1]["device_peak_mb"],
                    "process_peak_rss_mb": runs[label][-1]["peak_rss_mb"]}
            for label, values in speed.items()}


def print_summary(summary, shape):
    print(f"\nTraining keras_tx on JAX, shape {shape!r} {training.SHAPES[shape]}, same global batch")
    print(harness.format_table(
        ["contender", "devices", "tokens/s", "x one device", "weights+optimizer MiB/device",
         "device peak MiB", "process peak RSS MiB"],
        [[label, s["devices"], s["tokens_per_second"], s["over_one_device"] or "-", s["state_mb_per_device"],
          s["device_peak_mb"] or "-", s["process_peak_rss_mb"]] for label, s in summary.items()]))
    print("Virtual CPU devices share the same cores: on a CPU this is the overhead of splitting, not a speed-up.")
