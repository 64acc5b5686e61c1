"""`keras-tx params --preset NAME` (or the model's flags): count a GPT's parameters on paper.

Prints one line per weight -- its shape, how many blocks repeat it, and the
parameters it adds -- and the total, without building the model. Flags given
with a preset change that preset.

    keras-tx params --preset gpt2
    keras-tx params --preset gpt3 --matrices-only     # the famous 175 billion
    keras-tx params --vocab-size 65 --max-length 256 --embed-dim 384 --num-heads 6 --num-layers 6
"""

from keras_tx_tools.commands import positive_int

SIZE_FLAGS = ("vocab_size", "max_length", "embed_dim", "num_heads", "num_layers", "ff_dim")
PRESET_NAMES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3")  # keras_tx.parameters.PRESETS


def add_arguments(parser):
    parser.add_argument("--preset", choices=PRESET_NAMES, help="a published configuration")
    for name in SIZE_FLAGS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=positive_int, dest=name)
    parser.add_argument("--untied", action="store_true", help="a separate unembedding matrix (tie_weights=False)")
    parser.add_argument("--positional", choices=("learned", "sinusoidal"), default="learned")
    parser.add_argument(
        "--matrices-only", action="store_true",
        help="count only weight matrices, the unembedding too (no biases, norms or positions)",
    )


def run(args):
    from keras_tx.parameters import PRESETS, parameter_breakdown

    config = dict(PRESETS[args.preset]) if args.preset else {}
    config.update({name: getattr(args, name) for name in SIZE_FLAGS if getattr(args, name) is not None})
    missing = [f"--{name.replace('_', '-')}" for name in SIZE_FLAGS[:5] if name not in config]
    if missing:
        raise ValueError(f"give --preset or all of {', '.join(missing)}.")
    groups = parameter_breakdown(
        **config, tie_weights=not args.untied, positional=args.positional, matrices_only=args.matrices_only
    )
    print(", ".join(f"{name}={value}" for name, value in config.items()))
    print(f"{'weight':<24} {'shape':<16} {'copies':>6} {'parameters':>17}")
    for group in groups:
        total = "tied to the token embedding" if group.tied else f"{group.total:,}"
        print(f"{group.name:<24} {str(group.shape):<16} {group.copies:>6} {total:>17}")
    print(f"{'total':<24} {'':<16} {'':>6} {sum(group.total for group in groups):>17,}")
    return 0
