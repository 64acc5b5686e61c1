"""`keras-tx evaluate MODEL`: recompute a trained model's results on its validation data.

Reads the task and settings from the `metrics.json` that `keras-tx train`
wrote beside `MODEL`, rebuilds the validation data with the saved tokenizer,
and prints the same results table as the end of training.

    keras-tx evaluate runs/reverse/model.keras
    keras-tx evaluate runs/shakespeare-char/model.keras --backend torch
"""

import json
import warnings

from keras_tx_tools.commands import add_backend_argument, add_threads_argument, existing_file


def add_arguments(parser):
    parser.add_argument("model", type=existing_file, metavar="MODEL", help="a model.keras saved by `keras-tx train`")
    parser.add_argument("--data", type=existing_file, help="shakespeare-char: the text file (default: as in training)")
    add_backend_argument(parser)
    add_threads_argument(parser)


def run(args):
    import keras

    from keras_tx_tools.commands.train import print_results
    from keras_tx_tools.data.shakespeare import OfflineCorpusWarning
    from keras_tx_tools.threads import set_threads
    from keras_tx_tools.training import saved
    from keras_tx_tools.training.course_model import errors_of
    from keras_tx_tools.training.tasks import TASKS

    set_threads(args.threads)
    model = saved.load_model(args.model)
    metrics_path = args.model.parent / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(
            f"No metrics.json beside {args.model}: `keras-tx train` writes one with the task and its settings."
        )
    record = json.loads(metrics_path.read_text(encoding="utf-8"))
    task, config = TASKS[record["task"]], record["config"]
    if args.data is not None:
        config["data"] = args.data
    tokenizer = saved.load_tokenizer(model, args.model) if task.name != "imdb" else None
    with warnings.catch_warnings():
        # Training warns when it falls back on the offline corpus; evaluating
        # says where its data came from below, and whether training used it too.
        warnings.simplefilter("ignore", OfflineCorpusWarning)
        data = task.data(config, tokenizer)
    with errors_of(model):
        results = task.results(task.compile(model, config), data, config)
    print(f"{task.name} on {keras.backend.backend()}, data from {data.source}")
    if data.source != record.get("data_source", data.source):
        print(f"note: the model was trained on data from {record['data_source']}")
    print_results(results)
    return 0
