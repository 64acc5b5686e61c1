"""`keras-tx train TASK`: train a model, with a progress bar, pictures and samples.

    keras-tx train reverse
    keras-tx train shakespeare-char --data tinyshakespeare.txt --steps 2000
    keras-tx train shakespeare-words --epochs 4 --out runs/words
    keras-tx train imdb --backend jax
    keras-tx train shakespeare-char --backend jax --distribute model --mesh 2x4

Writes into `--out` (default `runs/TASK`):

- `model.keras`: the checkpoint with the best validation loss;
- `tokenizer.json`: the tokenizer (language models and reversal);
- `metrics.json`: configuration, per-epoch history, wall time, tokens/s and
  the final results (for `reverse`: `first_half_accuracy` and
  `second_half_accuracy`);
- `loss.png` and `attention.png`: loss curves, attention of every head.

Ctrl-C stops after the current step and still writes all of the above.
"""

import argparse
import datetime
import pathlib

import keras

from keras_tx_tools.commands import add_backend_argument, non_negative_float, non_negative_int, positive_int
from keras_tx_tools.data import tokenizers
from keras_tx_tools.training import callbacks, distribute, loss, plots, recipe
from keras_tx_tools.training.tasks import TASKS, total_steps

INTERRUPTED = 130  # the exit status of a program stopped by Ctrl-C


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "defaults:\n" + "\n".join(
        f"  {task.name}: " + ", ".join(f"{name}={value}" for name, value in task.defaults.items())
        for task in TASKS.values()
    )
    parser.add_argument("task", choices=TASKS, help="; ".join(f"{t.name}: {t.description}" for t in TASKS.values()))
    add_backend_argument(parser)
    parser.add_argument("--out", type=pathlib.Path, help="output directory (default: runs/TASK)")
    flags = parser.add_argument_group("settings (defaults depend on the task: see below)")
    flags.add_argument("--epochs", type=positive_int)
    flags.add_argument("--steps", type=positive_int, help="training steps in all, spread over the epochs")
    flags.add_argument("--batch-size", type=positive_int)
    flags.add_argument("--sequence-length", type=positive_int, help="context length in tokens")
    flags.add_argument("--embed-dim", type=positive_int)
    flags.add_argument("--num-heads", type=positive_int)
    flags.add_argument("--num-layers", type=positive_int)
    flags.add_argument("--ff-dim", type=positive_int, help="MLP width (default: 4 x embed-dim)")
    flags.add_argument("--dropout", type=non_negative_float)
    flags.add_argument("--learning-rate", type=non_negative_float, help="peak learning rate of AdamW")
    flags.add_argument("--warmup-steps", type=non_negative_int, help="linear warmup before the cosine decay")
    flags.add_argument("--weight-decay", type=non_negative_float)
    flags.add_argument("--vocab-size", type=positive_int, help="reverse: symbols; words and imdb: vocabulary cap")
    flags.add_argument("--half-length", type=positive_int, help="reverse: symbols before the reversal")
    flags.add_argument("--num-validation", type=positive_int, help="reverse: held-out sequences")
    flags.add_argument("--data", type=pathlib.Path, help="shakespeare-char: the text file to train on")
    flags.add_argument(
        "--sample-tokens", type=non_negative_int, help="language models: tokens sampled after each epoch (0: none)"
    )
    flags.add_argument("--seed", type=int)
    distribute.add_arguments(parser)


def run(args):
    task = TASKS[args.task]
    config = configure(task, args)
    distribute.set_distribution(args.distribute, args.mesh, config)
    out = args.out or pathlib.Path("runs") / task.name
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config["seed"])

    data = task.data(config)
    model = task.build_model(config, data.tokenizer)
    model.compile(
        optimizer=recipe.nanogpt_adamw(
            config["learning_rate"], total_steps(config, data), config["warmup_steps"], config["weight_decay"]
        ),
        loss=loss.SparseCrossEntropy(),
        metrics=list(task.metrics),
    )
    model(data.sample_ids)  # creates the weights, so that they can be counted
    print(f"{task.name}: {model.count_params():,} parameters, data from {data.source}, writing to {out}")
    if data.tokenizer is not None:
        tokenizers.save(data.tokenizer, out / "tokenizer.json")

    stop = callbacks.StopOnInterrupt()
    log = callbacks.MetricsLog(
        out / "metrics.json", tokens_per_step=data.tokens_per_step, task=task.name,
        backend=keras.backend.backend(), command=command_line(args), date=datetime.date.today().isoformat(),
        data_source=data.source, config={name: _jsonable(value) for name, value in config.items()},
    )
    run_callbacks = [
        keras.callbacks.ModelCheckpoint(out / "model.keras", monitor="val_loss", save_best_only=True),
        stop,
        log,
    ]
    if task.language_model and config["sample_tokens"]:
        run_callbacks.append(callbacks.TextSample(data.tokenizer, task.prompt, num_tokens=config["sample_tokens"]))
    model.fit(**data.fit_arguments, epochs=config["epochs"], callbacks=run_callbacks)

    best = keras.saving.load_model(out / "model.keras")
    results = task.results(best, data, config)
    log.record.update(results=results, interrupted=stop.interrupted)
    log.write()
    title = f"keras-tx train {task.name} ({keras.backend.backend()})"
    plots.plot_loss(log.record["history"], out / "loss.png", title=title)
    plots.plot_attention(best.attention_maps(data.sample_ids), data.sample_labels(), out / "attention.png", title=title)
    print_results(results)
    print(f"Saved model.keras, metrics.json, loss.png and attention.png in {out}")
    return INTERRUPTED if stop.interrupted else 0


def configure(task, args):
    """The task's defaults, updated with the flags given on the command line."""
    config = dict(task.defaults)
    for name, value in vars(args).items():
        if value is None or name in ("task", "out", "keras_backend", "distribute", "mesh"):
            continue
        if name not in config:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} does not apply to the {task.name} task.")
        config[name] = value
    if config.get("dropout", 0) >= 1:
        raise ValueError(f"--dropout must be in [0, 1); received {config['dropout']}.")
    return config


def print_results(results):
    """Prints the final results as a two-column table (text samples below it)."""
    print("\nResults on held-out data:")
    for name, value in results.items():
        if isinstance(value, str):
            print(f"  {name}:\n{value}")
        else:
            print(f"  {name:<22} {value}")


def command_line(args):
    """The `keras-tx train` command that reproduces this run."""
    words = ["keras-tx", "train", args.task]
    for name, value in vars(args).items():
        if value is not None and name != "task":
            flag = "--backend" if name == "keras_backend" else "--" + name.replace("_", "-")
            words += [flag, str(value)]
    return " ".join(words)


def _jsonable(value):
    return str(value) if isinstance(value, pathlib.Path) else value
