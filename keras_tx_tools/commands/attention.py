"""`keras-tx attention (MODEL | --checkpoint DIR) --prompt TEXT`: draw where every head looks.

Runs the prompt through a language model -- one trained by `keras-tx train`
or a GPT-2 checkpoint -- and draws each head's attention weights as a heat
map: row `i` is how much token `i` attends to each earlier token. One row of
panels per layer, one panel per head.

    keras-tx attention runs/shakespeare-char/model.keras --prompt "ROMEO: But soft"   # runs/attention.png
    keras-tx attention --checkpoint gpt2 --prompt "The cat sat on the mat because it was tired" --layer 5
"""

import argparse
import pathlib

from keras_tx_tools.commands import add_backend_argument, positive_int
from keras_tx_tools.commands.generate import add_model_arguments


def add_arguments(parser):
    add_model_arguments(parser)
    parser.add_argument("--prompt", required=True, help="the text whose attention is drawn")
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("runs", "attention.png"), metavar="PNG",
        help="the picture to write (default: runs/attention.png)",
    )
    parser.add_argument(
        "--layer", type=layer_choice, default="all", metavar="N|all",
        help="draw layer N (counted from 1) or all layers (default: all)",
    )
    add_backend_argument(parser)


def layer_choice(text):
    """`argparse` type: `all` or a layer number >= 1."""
    try:
        return text if text == "all" else positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a layer number >= 1 or 'all', got {text}") from None


def run(args):
    from keras_tx_tools.commands.generate import load_language_model
    from keras_tx_tools.training import plots

    model, tokenizer = load_language_model(args)
    ids = tokenizer.encode(args.prompt)
    if not 1 <= len(ids) <= model.max_length:
        raise ValueError(f"--prompt is {len(ids)} tokens; the model reads 1 to {model.max_length}.")
    layers = range(1, model.num_layers + 1) if args.layer == "all" else [args.layer]
    if args.layer != "all" and args.layer > model.num_layers:
        raise ValueError(f"--layer {args.layer} does not exist: the model has {model.num_layers} layers.")
    maps = model.attention_maps(ids[None])
    labels = [tokenizer.decode([token_id]) for token_id in ids]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plots.plot_attention(
        [maps[layer - 1] for layer in layers], labels, args.out, title=f"Attention: {args.prompt!r}", layer_numbers=layers
    )
    print(f"Wrote {args.out}: {len(layers)} layer(s) x {model.num_heads} heads over {len(ids)} tokens.")
    return 0
