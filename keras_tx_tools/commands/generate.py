"""`keras-tx generate (MODEL | --checkpoint DIR) --prompt TEXT`: continue a prompt with a language model.

Needs only the files `keras-tx train` saved: `MODEL` (a `.keras` file) and
the `tokenizer.json` beside it; or a GPT-2 checkpoint folder (`config.json`,
`model.safetensors`, and `vocab.json` + `merges.txt` or `tokenizer.json`).
A model trained with `--model exercises` is the student's own GPT: it loads
from the course folder's `exercises/`, and samples with the student's own
`sample_next_token` once written (see `keras_tx_tools.training.course_model`).

    keras-tx generate runs/shakespeare-char/model.keras --prompt "ROMEO:" --top-k 10
    keras-tx generate runs/reverse/model.keras --prompt "31415926|" --num-tokens 8 --temperature 0
    keras-tx generate --checkpoint gpt2 --prompt "The meaning of life is" --num-tokens 40 --top-k 40
"""

from keras_tx_tools.commands import (
    add_backend_argument, add_threads_argument, existing_file, existing_folder, non_negative_float, non_negative_int,
    positive_int,
)


def add_arguments(parser):
    add_model_arguments(parser)
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--num-tokens", type=positive_int, default=200, help="tokens to write (default: 200)")
    parser.add_argument("--temperature", type=non_negative_float, default=0.8, help="0 is greedy (default: 0.8)")
    parser.add_argument("--top-k", type=positive_int, help="sample among the k most likely tokens")
    parser.add_argument("--top-p", type=non_negative_float, help="sample among the most likely tokens of total probability p")
    parser.add_argument("--seed", type=non_negative_int, help="makes the sample reproducible")
    add_backend_argument(parser)
    add_threads_argument(parser)


def run(args):
    from keras_tx_tools.threads import set_threads
    from keras_tx_tools.training.course_model import errors_of
    from keras_tx_tools.training.text_generation import continue_text

    set_threads(args.threads)
    model, tokenizer = load_language_model(args)
    with errors_of(model):
        text = continue_text(
            model, tokenizer, args.prompt, args.num_tokens,
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
        )
    print(args.prompt + text)
    return 0


def add_model_arguments(parser):
    """`MODEL` or `--checkpoint DIR`: the two ways to name a language model."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "model", nargs="?", type=existing_file, metavar="MODEL", help="a model.keras saved by `keras-tx train`"
    )
    source.add_argument(
        "--checkpoint", type=existing_folder, metavar="DIR",
        help="a GPT-2 checkpoint folder: config.json, model.safetensors, vocab.json and merges.txt",
    )


def load_language_model(args):
    """`(model, tokenizer)` from `args.checkpoint` or `args.model`, as `add_model_arguments` declares them."""
    if args.checkpoint is not None:
        try:
            from keras_tx_tools.gpt2.checkpoint import load_gpt2
        except ModuleNotFoundError:  # a student release without the library
            raise ValueError("--checkpoint opens GPT-2 as the library's GPT, which this release does not include; "
                             "the capstone, exercises/gpt2.py, loads it into your own GPT") from None
        from keras_tx_tools.gpt2.tokenizer import GPT2Tokenizer

        model, tokenizer = load_gpt2(args.checkpoint), GPT2Tokenizer.from_directory(args.checkpoint)
        if tokenizer.vocab_size > model.vocab_size:
            raise ValueError(
                f"The tokenizer in {args.checkpoint} has {tokenizer.vocab_size} tokens, "
                f"more than the model's vocab_size={model.vocab_size}: they do not belong together."
            )
        return model, tokenizer
    return load_keras_language_model(args.model)


def load_keras_language_model(path):
    """`(model, tokenizer)` from a `.keras` file and the `tokenizer.json` beside it."""
    from keras_tx_tools.training import saved

    model = saved.load_model(path)
    if not hasattr(model, "generate"):
        raise ValueError(f"{path} holds a {type(model).__name__}, which classifies text and cannot generate it.")
    return model, saved.load_tokenizer(model, path)
