"""Cut one long array of token ids into training windows.

A language model trains on windows of `sequence_length + 1` consecutive
tokens: the first `sequence_length` are the input, the last
`sequence_length` (shifted by one) are the targets, so every position
predicts its next token. `TextWindows` cuts the text into disjoint windows,
so no token is seen twice in one pass and the model cannot memorize text it
will be scored on from an overlapping neighbour. It is a
`keras.utils.PyDataset`: `model.fit` reads it batch by batch, and it can
shuffle the window order every pass. With `shift_grid=True` every pass also
moves the whole grid of windows by a random offset (still disjoint within
the pass), so that a token is not always at the same position of its window.

>>> windows = TextWindows(np.arange(100), sequence_length=4, batch_size=2)
>>> len(windows), windows.num_windows
(10, 20)
>>> inputs, targets = windows[0]
>>> inputs.tolist(), targets.tolist()
([[0, 1, 2, 3], [5, 6, 7, 8]], [[1, 2, 3, 4], [6, 7, 8, 9]])
>>> shifted = TextWindows(np.arange(100), 4, 2, shift_grid=True)
>>> shifted.window_starts(0).tolist(), shifted.num_windows
([4, 9], 19)
"""

import keras
import numpy as np


class TextWindows(keras.utils.PyDataset):
    """Batches of `(inputs, targets)` from windows of `token_ids`.

    Args:
        token_ids: 1-D integer array, the whole tokenized text.
        sequence_length: tokens per input (and per target) row.
        batch_size: rows per batch. Disjoint windows that do not fill a last
            batch are left out, so every batch has the same shape.
        batches_per_epoch: how many batches `model.fit` sees per epoch.
            Default: as many as one pass over the disjoint windows. When
            set, the data stream continues across epochs (epoch 2 starts
            where epoch 1 stopped) and wraps around to a new pass when it
            runs out.
        shuffle: visit the windows in a new random order every pass.
        shift_grid: start the grid of windows at a new random offset (from
            0 to `sequence_length`) every pass. One window less fits in the
            text, to leave room for the largest offset.
        seed: seed of the shuffling and of the offsets.
        **kwargs: `keras.utils.PyDataset` options (`workers`, ...).
    """

    def __init__(
        self,
        token_ids,
        sequence_length,
        batch_size,
        batches_per_epoch=None,
        shuffle=False,
        shift_grid=False,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        token_ids = np.asarray(token_ids, dtype="int32")
        self.window = sequence_length + 1
        room_for_offsets = self.window - 1 if shift_grid else 0
        self.num_windows = (len(token_ids) - room_for_offsets) // self.window
        if sequence_length < 1 or batch_size < 1 or self.num_windows < batch_size:
            raise ValueError(
                f"{len(token_ids)} tokens do not make one batch of {batch_size} "
                f"windows of sequence_length={sequence_length} (+1 target): "
                "use a longer text, a smaller `batch_size` or a smaller "
                "`sequence_length`."
            )
        # Row `i` is the window that starts at token `i` (a view: no copy).
        self.windows_at = np.lib.stride_tricks.sliding_window_view(token_ids, self.window)
        self.batch_size = batch_size
        self.batches_per_pass = self.num_windows // batch_size
        self.batches_per_epoch = batches_per_epoch or self.batches_per_pass
        self.shuffle = shuffle
        self.shift_grid = shift_grid
        self.seed = seed
        self.epoch = 0

    def __len__(self):
        return self.batches_per_epoch

    def __getitem__(self, index):
        step = self.epoch * self.batches_per_epoch + index
        batch = self.windows_at[self.window_starts(step)]
        return batch[:, :-1], batch[:, 1:]

    def window_starts(self, step):
        """Where the windows of batch number `step` (counted over all epochs) start."""
        pass_index, batch_in_pass = divmod(step, self.batches_per_pass)
        first = batch_in_pass * self.batch_size
        rows = self.window_order(pass_index)[first : first + self.batch_size]
        return self.grid_offset(pass_index) + rows * self.window

    def grid_offset(self, pass_index):
        """Where the first window of pass number `pass_index` starts."""
        if not self.shift_grid:
            return 0
        return np.random.default_rng([self.seed, pass_index, 1]).integers(self.window)

    def window_order(self, pass_index):
        """The order in which pass number `pass_index` visits the windows."""
        if not self.shuffle:
            return np.arange(self.num_windows)
        rng = np.random.default_rng([self.seed, pass_index])
        return rng.permutation(self.num_windows)

    def on_epoch_end(self):
        self.epoch += 1
