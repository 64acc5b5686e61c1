"""`keras-tx train TASK`: train a model, with a progress bar, pictures and samples.

    keras-tx train reverse
    keras-tx train shakespeare-char --data tinyshakespeare.txt --steps 2000
    keras-tx train shakespeare-words --epochs 4 --out runs/words
    keras-tx train imdb --backend jax
    keras-tx train shakespeare-char --backend jax --distribute model --mesh 2x4
    keras-tx train reverse --model exercises     # your own GPT, from exercises/model.py

`--model` picks the GPT: the library's (the default where `keras_tx` is
installed), or the course's own from `exercises/model.py` or
`solutions/model.py` (see `keras_tx_tools.training.course_model`). On
PyTorch, `--threads N` sets the threads; by default the run takes the free
cores (see `keras_tx_tools.threads`).

Writes into `--out` (default `runs/TASK`):

- `model.keras`: the checkpoint with the best validation loss;
- `tokenizer.json`: the tokenizer (language models and reversal);
- `metrics.json`: configuration, per-epoch history, wall time, tokens/s and
  the final results (for `reverse`: `first_half_accuracy` and
  `second_half_accuracy`);
- `loss.png` and `attention.png`: loss curves, attention of every head.

Ctrl-C stops at the end of the current step, within seconds: it saves
`model.keras` as the weights are at that step, `metrics.json` (with
`"interrupted": true`), `tokenizer.json` and `loss.png`, and skips the
validation, samples and `attention.png` of a finished run.
"""

import argparse
import contextlib
import datetime
import pathlib
import sys

from keras_tx_tools.commands import (
    add_backend_argument, add_threads_argument, existing_file, non_negative_float, non_negative_int, output_folder,
    positive_int,
)
from keras_tx_tools.training import distribute, settings

INTERRUPTED = 130  # the exit status of a program stopped by Ctrl-C
LOSS_POINTS = 100  # about this many points on the training curves of loss.png


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "defaults:\n" + "\n".join(
        f"  {name}: " + ", ".join(f"{flag}={value}" for flag, value in defaults.items())
        for name, defaults in settings.DEFAULTS.items()
    )
    parser.add_argument(
        "task", choices=settings.DESCRIPTIONS, help="; ".join(f"{n}: {d}" for n, d in settings.DESCRIPTIONS.items())
    )
    parser.add_argument(
        "--model", choices=settings.MODELS, default=settings.default_model(),
        help="the GPT to train: the library's, or the course's own from exercises/model.py or solutions/model.py "
        "(default: %(default)s)",
    )
    add_backend_argument(parser)
    add_threads_argument(parser)
    parser.add_argument("--out", type=output_folder, help="output directory (default: runs/TASK)")
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
    flags.add_argument("--vocab-size", type=positive_int,
                       help="reverse: symbols; bpe: 256 bytes + merges; words and imdb: vocabulary cap")
    flags.add_argument("--half-length", type=positive_int, help="reverse: symbols before the reversal")
    flags.add_argument("--num-validation", type=positive_int, help="reverse: held-out sequences")
    flags.add_argument("--data", type=existing_file, help="shakespeare-char, shakespeare-bpe: the text file to train on")
    flags.add_argument(
        "--sample-tokens", type=non_negative_int, help="language models: tokens sampled after each epoch (0: none)"
    )
    flags.add_argument("--seed", type=int)
    distribute.add_arguments(parser)


def run(args):
    import keras

    from keras_tx_tools.threads import set_threads
    from keras_tx_tools.training.tasks import TASKS

    task = TASKS[args.task]
    config = configure(task, args)
    distribute.set_distribution(args.distribute, args.mesh, config)
    out = args.out or pathlib.Path("runs") / task.name
    out.mkdir(parents=True, exist_ok=True)
    set_threads(args.threads)
    keras.utils.set_random_seed(config["seed"])
    with _course_errors(args.model):
        return _train(task, config, out, args)


def _course_errors(model):
    """One line instead of a traceback when the course's own GPT is unfinished or broken."""
    if model == "library":
        return contextlib.nullcontext()
    from keras_tx_tools.training.course_model import course_errors

    return course_errors(model)


def _train(task, config, out, args):
    import keras

    from keras_tx_tools.data import tokenizers
    from keras_tx_tools.training import plots, saved

    data = task.data(config)
    model = _compiled_model(task, config, data, args.model)
    print(f"{task.name}: {_model_name(args.model)}, {model.count_params():,} parameters, "
          f"data from {data.source}, writing to {out}")
    if args.model != "library" and config.get("dropout"):
        print(f"note: {args.model}/model.py's GPT has no dropout: --dropout {config['dropout']} is not used.")
    if data.tokenizer is not None:
        tokenizers.save(data.tokenizer, out / "tokenizer.json")
    log, stop = _fit(model, task, config, data, out, args)
    title = f"keras-tx train {task.name} ({keras.backend.backend()})"
    if stop.interrupted:
        return _save_interrupted(model, log, out, title)

    best = task.compile(saved.load_model(out / "model.keras"), config)
    results = task.results(best, data, config)
    log.record.update(results=results, interrupted=False)
    log.write()
    plots.plot_loss(log.record["history"], out / "loss.png", title=title, steps=log.record["step_history"])
    maps = best.attention_maps(data.sample_ids)
    if maps:
        plots.plot_attention(maps, data.sample_labels(), out / "attention.png", title=title)
    print_results(results)
    pictures = "loss.png and attention.png" if maps else "loss.png (no attention.png: the model's attention "\
        "does not call its scaled_dot_product_attention)"
    print(f"Saved model.keras, metrics.json, {pictures} in {out}")
    return 0


def _model_name(model):
    return "the library's GPT" if model == "library" else f"the GPT of {model}/model.py"


def _save_interrupted(model, log, out, title):
    """Saves a run stopped by Ctrl-C: the model as it is, `metrics.json` and the training curve so far."""
    from keras_tx_tools.training import plots

    model.save(out / "model.keras")
    log.stop_early()
    saved = ["model.keras", "metrics.json"]
    history = log.record["history"] or log.record["step_history"]
    if history:
        plots.plot_loss(history, out / "loss.png", title=f"{title}, interrupted", steps=log.record["step_history"])
        saved.append("loss.png")
    print(f"\nInterrupted at step {log.record['steps']} (epoch {log.record['epochs']} of {log.record['config']['epochs']}): "
          f"saved {', '.join(saved[:-1])} and {saved[-1]} in {out}; model.keras holds the weights of that step, not validated. "
          "Skipped: validation, samples and attention.png.")
    return INTERRUPTED


def _compiled_model(task, config, data, source):
    """A fresh model of `task`, compiled with nanoGPT's AdamW, its weights created and its output checked.

    The course's own GPT learns with the student's own schedule once written
    (see `course_model.OWN_PARTS`), else with Keras' `CosineDecay` on the same curve.
    """
    from keras_tx_tools.training import recipe
    from keras_tx_tools.training.tasks import total_steps

    schedule = None  # the recipe's own
    if source != "library":
        from keras_tx_tools.training.course_model import own_part, schedule_of_recipe

        own = own_part(source, "schedule")
        schedule = schedule_of_recipe(own) if own else recipe.keras_cosine_schedule
    optimizer = recipe.nanogpt_adamw(
        config["learning_rate"], total_steps(config, data), config["warmup_steps"], config["weight_decay"], schedule
    )
    model = task.compile(task.build_model(config, data.tokenizer, source), config, optimizer)
    output = model(data.sample_ids)  # creates the weights, so that they can be counted
    if source != "library":
        _check_logits(output, data.sample_ids, model.vocab_size, source)
    return model


def _check_logits(logits, token_ids, vocab_size, source):
    from keras_tx_tools.training.course_model import ExerciseError

    expected = (*token_ids.shape, vocab_size)
    if tuple(logits.shape) != expected:
        raise ExerciseError(
            f"{source}/model.py: GPT returns an output of shape {tuple(logits.shape)} for token ids of shape "
            f"{tuple(token_ids.shape)}; expected the logits, {expected} (batch, tokens, vocab_size)."
        )


def _fit(model, task, config, data, out, args):
    """Trains `model` with checkpoints, Ctrl-C handling, `metrics.json` and samples; returns `(log, stop)`.

    On a terminal Keras draws its progress bar; written to a file or a pipe,
    the run prints one plain line per epoch instead (`verbose=2`).
    """
    import keras

    from keras_tx_tools.training import callbacks
    from keras_tx_tools.training.tasks import total_steps

    stop = callbacks.StopOnInterrupt()
    progress = callbacks.ProgressBar()
    log = callbacks.MetricsLog(
        out / "metrics.json", tokens_per_step=data.tokens_per_step,
        log_every=max(1, total_steps(config, data) // LOSS_POINTS), task=task.name, model=args.model,
        backend=keras.backend.backend(), command=command_line(args), date=datetime.date.today().isoformat(),
        data_source=data.source, config={name: _jsonable(value) for name, value in config.items()},
    )
    # Stop comes last, so that the others have seen the step it stops after.
    run_callbacks = [
        keras.callbacks.ModelCheckpoint(out / "model.keras", monitor="val_loss", save_best_only=True),
        log,
        progress,
    ]
    if task.language_model and config["sample_tokens"]:
        run_callbacks.append(callbacks.TextSample(data.tokenizer, task.prompt, num_tokens=config["sample_tokens"]))
    run_callbacks.append(stop)
    verbose = 1 if sys.stdout.isatty() else 2
    try:
        model.fit(**data.fit_arguments, epochs=config["epochs"], callbacks=run_callbacks, verbose=verbose)
    except callbacks.TrainingInterrupted:
        progress.end_line()
    return log, stop


def configure(task, args):
    """The task's defaults, updated with the flags given on the command line."""
    config = dict(task.defaults)
    for name, value in vars(args).items():
        if value is None or name in ("task", "out", "keras_backend", "verbose", "distribute", "mesh", "model", "threads"):
            continue
        if name not in config:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} does not apply to the {task.name} task.")
        config[name] = value
    if args.model != "library" and not task.gpt:
        raise ValueError(
            f"--model {args.model} trains the course's GPT, a language model: it applies to "
            f"{', '.join(name for name in settings.DESCRIPTIONS if name != task.name)}, not to {task.name}."
        )
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
        if value is not None and name not in ("task", "verbose"):
            flag = "--backend" if name == "keras_backend" else "--" + name.replace("_", "-")
            words += [flag, "x".join(map(str, value)) if name == "mesh" else str(value)]
    return " ".join(words)


def _jsonable(value):
    return str(value) if isinstance(value, pathlib.Path) else value
