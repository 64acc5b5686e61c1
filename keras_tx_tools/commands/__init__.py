"""The subcommands of `keras-tx`, one module each.

Protocol: a subcommand module exposes two functions, and `keras_tx_tools.cli`
lists it in its table (imported only when that subcommand runs):

- `add_arguments(parser)`: declares its flags on the `argparse` parser it
  is given (a subparser named after the subcommand);
- `run(args) -> int`: does the work and returns the exit status.

A module that calls `add_backend_argument(parser)` gets `--backend B`: when B
is not the backend Keras was imported with, `keras_tx_tools.cli` restarts the same
command with `KERAS_BACKEND=B` before `run` is called. Errors that the user
can fix (`ValueError`, `OSError`) raised by `run` are printed by the
dispatcher as one line, without a traceback.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_backend_argument(parser)
>>> parser.parse_args(["--backend", "jax"]).keras_backend
'jax'

Paths given on the command line are checked by their `argparse` types
(`existing_file`, `existing_folder`, `output_folder`), so a mistyped path is
answered at once, before any backend loads:

>>> existing_file("no-such-model.keras")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: there is no file 'no-such-model.keras'
"""

import argparse
import pathlib

BACKENDS = ("tensorflow", "torch", "jax")


def add_backend_argument(parser):
    """Adds `--backend {tensorflow,torch,jax}` (stored as `args.keras_backend`)."""
    parser.add_argument(
        "--backend", dest="keras_backend", choices=BACKENDS,
        help="Keras backend to run on (default: KERAS_BACKEND or ~/.keras/keras.json)",
    )


def add_exercises_argument(parser, what):
    """Adds `--exercises NAME,...` (a list of names, checked against the course when the command runs)."""
    parser.add_argument(
        "--exercises", type=lambda text: [name for name in text.split(",") if name], metavar="NAME,...",
        help=f"{what} only these exercises (default: all); those they import are given as finished code, not graded",
    )


def add_threads_argument(parser):
    """Adds `--threads N` (stored as `args.threads`; None: `keras_tx_tools.threads.free_cores()`)."""
    parser.add_argument(
        "--threads", type=positive_int, metavar="N",
        help="PyTorch's intra-op threads (default: the free cores, i.e. the cores minus the load average, at least 1)",
    )


def positive_int(text):
    """`argparse` type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text):
    """`argparse` type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def non_negative_float(text):
    """`argparse` type: a finite number >= 0."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def existing_file(text):
    """`argparse` type: the path of a file that exists."""
    path = pathlib.Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"there is no file {text!r}")
    return path


def existing_folder(text):
    """`argparse` type: the path of a folder that exists."""
    path = pathlib.Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"there is no folder {text!r}")
    return path


def output_folder(text):
    """`argparse` type: a folder to write into, which need not exist yet but must not be a file."""
    path = pathlib.Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; give a folder to write the run into")
    return path
