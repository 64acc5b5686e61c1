"""Cut one long array of token ids into non-overlapping training windows.

A language model trains on windows of `sequence_length + 1` consecutive
tokens: the first `sequence_length` are the input, the last
`sequence_length` (shifted by one) are the targets, so every position
predicts its next token. `TextWindows` cuts the text into disjoint windows,
so no token is seen twice in one pass and the model cannot memorize text it
will be scored on from an overlapping neighbour. It is a
`keras.utils.PyDataset`: `model.fit` reads it batch by batch, and it
shuffles the window order once per pass.

>>> windows = TextWindows(np.arange(100), sequence_length=4, batch_size=2)
>>> len(windows), windows.num_windows
(10, 20)
>>> inputs, targets = windows[0]
>>> inputs.tolist(), targets.tolist()
([[0, 1, 2, 3], [5, 6, 7, 8]], [[1, 2, 3, 4], [6, 7, 8, 9]])
"""

import keras
import numpy as np


class TextWindows(keras.utils.PyDataset):
    """Batches of `(inputs, targets)` from disjoint windows of `token_ids`.

    Args:
        token_ids: 1-D integer array, the whole tokenized text.
        sequence_length: tokens per input (and per target) row.
        batch_size: rows per batch. Windows that do not fill a last batch
            are left out, so every batch has the same shape.
        batches_per_epoch: how many batches `model.fit` sees per epoch.
            Default: one full pass over the windows. When set, the data
            stream continues across epochs (epoch 2 starts where epoch 1
            stopped) and wraps around to a new pass when it runs out.
        shuffle: visit the windows in a new random order every pass.
        seed: seed of the shuffling.
        **kwargs: `keras.utils.PyDataset` options (`workers`, ...).
    """

    def __init__(
        self,
        token_ids,
        sequence_length,
        batch_size,
        batches_per_epoch=None,
        shuffle=False,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        token_ids = np.asarray(token_ids, dtype="int32")
        window = sequence_length + 1
        num_windows = len(token_ids) // window
        if sequence_length < 1 or batch_size < 1 or num_windows < batch_size:
            raise ValueError(
                f"{len(token_ids)} tokens do not make one batch of {batch_size} "
                f"windows of sequence_length={sequence_length} (+1 target): "
                "use a longer text, a smaller `batch_size` or a smaller "
                "`sequence_length`."
            )
        self.windows = token_ids[: num_windows * window].reshape(num_windows, window)
        self.batch_size = batch_size
        self.batches_per_pass = num_windows // batch_size
        self.batches_per_epoch = batches_per_epoch or self.batches_per_pass
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    @property
    def num_windows(self):
        return len(self.windows)

    def __len__(self):
        return self.batches_per_epoch

    def __getitem__(self, index):
        step = self.epoch * self.batches_per_epoch + index
        pass_index, batch_in_pass = divmod(step, self.batches_per_pass)
        start = batch_in_pass * self.batch_size
        rows = self.window_order(pass_index)[start : start + self.batch_size]
        batch = self.windows[rows]
        return batch[:, :-1], batch[:, 1:]

    def window_order(self, pass_index):
        """The order in which pass number `pass_index` visits the windows."""
        if not self.shuffle:
            return np.arange(self.num_windows)
        rng = np.random.default_rng([self.seed, pass_index])
        return rng.permutation(self.num_windows)

    def on_epoch_end(self):
        self.epoch += 1
