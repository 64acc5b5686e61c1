"""The reversal task: a toy dataset that shows whether the causal mask works.

Each sequence is `half_length` random symbols, a separator, then the same
symbols in reverse order::

    3 1 4 1 5 | 5 1 4 1 3

A language model trained on it predicts every next token. In the second
half each token is a copy of one already seen, so a model that attends to
the right earlier position predicts it perfectly: the attention pattern of
the second half is an anti-diagonal. In the first half the next symbol is
random, so an honest model can only guess (accuracy 1 / vocab_size). A model
that does better than chance on the first half is looking into the future:
its causal mask leaks.

Symbols are the ids `0 .. vocab_size - 1`; the separator is id `vocab_size`,
so the model's vocabulary has `vocab_size + 1` tokens when `separator=True`.

>>> inputs, targets = reversal_dataset(2, vocab_size=10, half_length=3, seed=0)
>>> inputs.shape, targets.shape
((2, 6), (2, 6))
>>> sequence = reversal_sequences(1, vocab_size=10, half_length=3, seed=0)[0]
>>> bool((sequence[4:] == sequence[:3][::-1]).all()), int(sequence[3])
(True, 10)
>>> batches = ReversalBatches(batch_size=32, batches_per_epoch=100, seed=0)
>>> len(batches), batches[0][0].shape
(100, (32, 16))
"""

import keras
import numpy as np


def reversal_sequences(
    num_sequences, vocab_size=10, half_length=8, separator=True, seed=None
):
    """Whole sequences `symbols [separator] reversed(symbols)`, int32.

    Args:
        num_sequences: how many sequences (rows).
        vocab_size: number of distinct symbols, at least 2.
        half_length: number of random symbols before the reversal, >= 2.
        separator: insert the separator token (id `vocab_size`) between the
            halves. Without it the model must count positions to know where
            the second half starts.
        seed: seed of the random symbols (anything `np.random.default_rng`
            takes); same seed, same sequences.

    Returns:
        int32 array of shape `(num_sequences, 2 * half_length + separator)`.
    """
    for name, value, minimum in (
        ("num_sequences", num_sequences, 1),
        ("vocab_size", vocab_size, 2),
        ("half_length", half_length, 2),
    ):
        if int(value) != value or value < minimum:
            raise ValueError(
                f"`{name}` must be an integer >= {minimum}; received {name}={value!r}."
            )
    rng = np.random.default_rng(seed)
    first = rng.integers(0, vocab_size, size=(num_sequences, half_length))
    middle = np.full((num_sequences, int(separator)), vocab_size)
    return np.concatenate([first, middle, first[:, ::-1]], axis=1).astype("int32")


def reversal_dataset(
    num_sequences, vocab_size=10, half_length=8, separator=True, seed=None
):
    """`(inputs, targets)` for next-token training: targets are inputs shifted by one.

    Same arguments as `reversal_sequences`; both arrays have shape
    `(num_sequences, 2 * half_length + separator - 1)`.
    """
    sequences = reversal_sequences(
        num_sequences, vocab_size, half_length, separator, seed
    )
    return sequences[:, :-1], sequences[:, 1:]


def half_accuracies(predictions, targets, half_length):
    """Token accuracy on the first half and on the second half separately.

    Args:
        predictions: predicted next-token ids, shape `(batch, length)`.
        targets: true next-token ids (from `reversal_dataset`), same shape.
        half_length: the `half_length` the data was generated with.

    Returns:
        `(first_half_accuracy, second_half_accuracy)`, fractions in [0, 1].
        Target position `t` predicts sequence position `t + 1`: the first
        half scores the `half_length - 1` random symbols after the first one
        (the first symbol is never a target), the second half scores the
        `half_length` reversed symbols. The separator is in neither.

    >>> targets = np.array([[1, 2, 9, 2, 1, 0]])
    >>> half_accuracies(np.array([[1, 0, 9, 2, 1, 0]]), targets, half_length=3)
    (0.5, 1.0)
    """
    correct = np.asarray(predictions) == np.asarray(targets)
    first = correct[:, : half_length - 1]
    second = correct[:, -half_length:]
    return float(first.mean()), float(second.mean())


class ReversalBatches(keras.utils.PyDataset):
    """Endless fresh training batches: batch `i` of epoch `e` uses seed `(seed, 0, e, i)`.

    Every batch is new data, so the model cannot memorize its training set;
    the same `seed` replays the same run, and seeds `(seed, 1, ...)` are free
    for held-out data. Arguments after `batches_per_epoch`
    are those of `reversal_sequences`; `**kwargs` go to `PyDataset`.
    """

    def __init__(
        self, batch_size, batches_per_epoch, vocab_size=10, half_length=8,
        separator=True, seed=0, **kwargs,
    ):
        super().__init__(**kwargs)
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.task = dict(vocab_size=vocab_size, half_length=half_length, separator=separator)
        self.seed = seed
        self.epoch = 0

    def __len__(self):
        return self.batches_per_epoch

    def __getitem__(self, index):
        return reversal_dataset(self.batch_size, **self.task, seed=[self.seed, 0, self.epoch, index])

    def on_epoch_end(self):
        self.epoch += 1
