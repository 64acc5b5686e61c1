"""`keras-tx evaluate MODEL`: recompute a trained model's results on its validation data.

Reads the task and settings from the `metrics.json` that `keras-tx train`
wrote beside `MODEL`, rebuilds the validation data with the saved tokenizer,
and prints the same results table as the end of training.

    keras-tx evaluate runs/reverse/model.keras
    keras-tx evaluate runs/shakespeare-char/model.keras --backend torch
"""

import json
import pathlib

import keras

from keras_tx_tools.commands import add_backend_argument
from keras_tx_tools.commands.train import print_results
from keras_tx_tools.data import tokenizers
from keras_tx_tools.training.tasks import TASKS


def add_arguments(parser):
    parser.add_argument("model", type=pathlib.Path, metavar="MODEL", help="a model.keras saved by `keras-tx train`")
    parser.add_argument("--data", type=pathlib.Path, help="shakespeare-char: the text file (default: as in training)")
    add_backend_argument(parser)


def run(args):
    metrics_path = args.model.parent / "metrics.json"
    if not args.model.is_file() or not metrics_path.is_file():
        raise FileNotFoundError(
            f"Need MODEL and the metrics.json beside it, as written by `keras-tx train`; "
            f"missing: {args.model if not args.model.is_file() else metrics_path}."
        )
    record = json.loads(metrics_path.read_text(encoding="utf-8"))
    task, config = TASKS[record["task"]], record["config"]
    if args.data is not None:
        config["data"] = args.data
    tokenizer_path = args.model.parent / "tokenizer.json"
    tokenizer = tokenizers.load(tokenizer_path) if tokenizer_path.is_file() else None
    data = task.data(config, tokenizer)
    results = task.results(keras.saving.load_model(args.model), data, config)
    print(f"{task.name} on {keras.backend.backend()}, data from {data.source}")
    print_results(results)
    return 0
