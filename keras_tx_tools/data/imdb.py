"""IMDB movie reviews for sentiment classification, via `keras.datasets.imdb`.

25,000 training and 25,000 test reviews, each already a list of word ids
(1 = start of review, 2 = out of vocabulary, the rest ranked by frequency),
labelled 0 (negative) or 1 (positive). Keras downloads `imdb.npz` once into
its cache (`~/.keras/datasets`); offline, the cached file is used, and with
neither a clear error names where to put the file.

Reviews are cut or padded (with 0, the classifier's `pad_id`) to
`max_length` tokens; long reviews keep their *end*, where the verdict
usually is (as in the Keras text-classification tutorial).

>>> (x_train, y_train), (x_val, y_val) = imdb_reviews(max_length=200)  # doctest: +SKIP
>>> x_train.shape, y_train.shape  # doctest: +SKIP
((25000, 200), (25000,))

With a stand-in for `keras.datasets.imdb.load_data` (two tiny reviews):

>>> def two_reviews(num_words):
...     return ([[1, 14, 22, 16], [1, 9]], [1, 0]), ([[1, 5]], [0])
>>> (x_train, y_train), _ = imdb_reviews(max_length=3, load_data=two_reviews)
>>> x_train.tolist(), y_train.tolist()
([[14, 22, 16], [1, 9, 0]], [1, 0])
"""

import os

import keras
import numpy as np

from keras_tx_tools.data.shakespeare import keras_cache_dir

FILE_NAME = "imdb.npz"
URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"


class DatasetUnavailableError(FileNotFoundError):
    """A dataset is neither in the cache nor downloadable."""


def imdb_reviews(vocab_size=20_000, max_length=200, load_data=None):
    """`((x_train, y_train), (x_val, y_val))`: int32 token arrays and 0/1 labels.

    Args:
        vocab_size: keep the `vocab_size` most frequent words (ids below it).
        max_length: tokens per review after cutting / padding.
        load_data: called like `keras.datasets.imdb.load_data` (the
            default); replace it to control network access (tests).

    Raises:
        DatasetUnavailableError: offline without a cached `imdb.npz`; the
            message names the path to place the file at.
    """
    load_data = load_data or keras.datasets.imdb.load_data
    try:
        (x_train, y_train), (x_val, y_val) = load_data(num_words=vocab_size)
    except Exception as error:  # no network, no cache, corrupt file
        cache = os.path.join(keras_cache_dir(), "datasets", FILE_NAME)
        raise DatasetUnavailableError(
            f"IMDB reviews are not available ({error}). Connect to the network "
            f"once, or download {URL} and place it at {cache}."
        ) from error

    def pad(reviews):
        return keras.utils.pad_sequences(
            reviews, maxlen=max_length, padding="post", truncating="pre", value=0
        ).astype("int32")

    return (pad(x_train), np.asarray(y_train, "int32")), (pad(x_val), np.asarray(y_val, "int32"))
