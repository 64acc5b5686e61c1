"""`keras-tx generate MODEL --prompt TEXT`: continue a prompt with a trained model.

Needs only the files `keras-tx train` saved: `MODEL` (a `.keras` file) and
the `tokenizer.json` beside it.

    keras-tx generate runs/shakespeare-char/model.keras --prompt "ROMEO:" --top-k 10
    keras-tx generate runs/reverse/model.keras --prompt "31415926|" --num-tokens 8 --temperature 0
"""

import pathlib

from keras_tx_tools.commands import add_backend_argument, non_negative_float, non_negative_int, positive_int


def add_arguments(parser):
    parser.add_argument("model", type=pathlib.Path, metavar="MODEL", help="a model.keras saved by `keras-tx train`")
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--num-tokens", type=positive_int, default=200, help="tokens to write (default: 200)")
    parser.add_argument("--temperature", type=non_negative_float, default=0.8, help="0 is greedy (default: 0.8)")
    parser.add_argument("--top-k", type=positive_int, help="sample among the k most likely tokens")
    parser.add_argument("--top-p", type=non_negative_float, help="sample among the most likely tokens of total probability p")
    parser.add_argument("--seed", type=non_negative_int, help="makes the sample reproducible")
    add_backend_argument(parser)


def run(args):
    from keras_tx_tools.training.text_generation import continue_text

    model, tokenizer = load_language_model(args.model)
    text = continue_text(
        model, tokenizer, args.prompt, args.num_tokens,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
    )
    print(args.prompt + text)
    return 0


def load_language_model(path):
    """`(model, tokenizer)` from a `.keras` file and the `tokenizer.json` beside it."""
    from keras_tx_tools.training import saved

    model = saved.load_model(path)
    if not hasattr(model, "generate"):
        raise ValueError(f"{path} holds a {type(model).__name__}, which classifies text and cannot generate it.")
    return model, saved.load_tokenizer(model, path)
