"""`keras-tx`: the command line, a small dispatcher over subcommand modules.

Each entry of `COMMANDS` names a module of `keras_tx_tools.commands` that follows
the protocol described there (`add_arguments(parser)`, `run(args) -> int`).
Modules are imported only when their subcommand is used, and they import
Keras only inside `run`: `--help` and a mistyped flag are answered before any
backend loads. `--backend B` then sets `KERAS_BACKEND` before Keras is first
imported, so only that backend loads, and unless `--verbose` is given the
backends' start-up log lines (TensorFlow's C++ logging) are switched off by
their environment variables first.

    keras-tx train reverse
    keras-tx generate runs/shakespeare-char/model.keras --prompt "ROMEO:"
    python -m keras_tx_tools --help
    keras-tx --version
"""

import argparse
import importlib
import importlib.metadata
import os
import sys

ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "0"}
"""Set (unless already set) before a backend loads: TensorFlow without oneDNN's custom
operations, whose notice on every start no log level silences (no slower on these models)."""

QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}
"""Also set without `--verbose`: no INFO or WARNING lines from TensorFlow's C++ logging."""

COMMANDS = {
    "train": ("keras_tx_tools.commands.train", "train a model on a task, with progress, plots and samples"),
    "generate": ("keras_tx_tools.commands.generate", "continue a prompt with a trained language model"),
    "evaluate": ("keras_tx_tools.commands.evaluate", "score a trained model on its validation data"),
    "attention": ("keras_tx_tools.commands.attention", "draw a language model's attention weights on a prompt"),
    "params": ("keras_tx_tools.commands.params", "count a GPT configuration's parameters, weight by weight"),
    "release": ("keras_tx_tools.commands.release", "build the student release of the exercises"),
    "grade-all": ("keras_tx_tools.commands.grade_all", "grade every student submission"),
    "autograder": ("keras_tx_tools.commands.autograder", "build a Gradescope autograder bundle"),
}


def main(argv=None):
    """Runs `keras-tx` with `argv` (default: `sys.argv[1:]`); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        overview = _overview_parser()
        overview.parse_args(argv)  # prints the help, or an error naming the commands
        overview.error(f"unknown command {argv[0]!r}")
    name, command_argv = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"keras-tx {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="show the backends' own log lines (TensorFlow, XLA)")
    args = parser.parse_args(command_argv)
    for variable, value in {**ENVIRONMENT, **({} if args.verbose else QUIET)}.items():
        os.environ.setdefault(variable, value)
    _choose_backend(getattr(args, "keras_backend", None), argv)
    try:
        return module.run(args)
    except (ValueError, OSError) as error:
        print(f"keras-tx {name}: error: {error}", file=sys.stderr)
        return 1


def _overview_parser():
    parser = argparse.ArgumentParser(prog="keras-tx", description="Train, sample and grade GPT-style transformers built with Keras 3.")
    parser.add_argument("--version", action="version", version=f"keras-tx {version()}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        subcommands.add_parser(name, help=help_text, add_help=False)
    return parser


def version():
    """The installed keras-tx release, as `keras_tx.__version__` gives it, without importing `keras_tx`
    (which would load a backend).

    >>> import keras_tx
    >>> version() == keras_tx.__version__
    True
    """
    return importlib.metadata.version("keras-tx")


def _choose_backend(backend, argv):
    """Makes Keras use `backend`: before its import, or by restarting under it if it runs another one."""
    if backend is None:
        return
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
        return
    import keras

    if keras.backend.backend() != backend:
        os.environ["KERAS_BACKEND"] = backend
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", "keras_tx_tools", *argv])

