"""Peak memory of training: the most resident memory each training process held.

It runs the training benchmark's workers (one fresh process per
implementation and backend: warm-up, then `--rounds` repetitions) and reports
each process's peak resident set after importing its framework and after
training, and the difference: what the model, its optimizer state, its
activations and its compiled step cost.

Run it:

    python -m benchmarks memory --shapes cpu,large --out memory.json
"""

from benchmarks import harness, training

QUICK = training.QUICK


def add_arguments(parser):
    training.add_arguments(parser)
    parser.set_defaults(rounds=1)


def main(args):
    shapes, implementations = training.check_arguments(args)
    results, summary = {}, {}
    for shape in shapes:
        steps = args.steps or training.DEFAULT_STEPS[shape]
        results[shape] = training.measure(shape, steps, args.backends, implementations,
                                          args.rounds, args.threads)
        summary[shape] = {
            label: {"after_imports_mb": info["peak_rss_after_imports_mb"],
                    "peak_mb": results[shape]["runs"][label][-1]["peak_rss_mb"]}
            for label, info in results[shape]["workers"].items()}
        print(f"\nPeak memory of training, shape {shape!r} {training.SHAPES[shape]}")
        print(harness.format_table(
            ["model", "after imports (MiB)", "peak (MiB)", "training adds (MiB)"],
            [[label, m["after_imports_mb"], m["peak_mb"], m["peak_mb"] - m["after_imports_mb"]]
             for label, m in summary[shape].items()]))
    config = {"shapes": {s: training.SHAPES[s] for s in shapes}, "rounds": args.rounds,
              "steps": args.steps, "backends": args.backends, "threads": args.threads}
    return harness.write_report(args.out, "memory", config, results, summary)
