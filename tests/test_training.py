"""Training helpers: callbacks, pictures and text generation, on tiny models."""

import json
import signal

import keras
import numpy as np
import pytest

from keras_tx import GPT
from keras_tx_tools.data.tokenizers import CharTokenizer
from keras_tx_tools.training import callbacks, plots
from keras_tx_tools.training.tasks import TASKS
from keras_tx_tools.training.text_generation import continue_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOKENIZER = CharTokenizer.from_text("abcde")


def _tiny_gpt():
    """All tests use the same shapes: JAX compiles each shape once per process."""
    model = GPT(TOKENIZER.vocab_size, max_length=8, embed_dim=8, num_heads=2, num_layers=1)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _data(rows=32, length=8):
    ids = np.random.default_rng(0).integers(0, TOKENIZER.vocab_size, size=(rows, length + 1))
    return ids[:, :-1], ids[:, 1:]


class _RaiseSignalAt(keras.callbacks.Callback):
    """Sends SIGINT to this process after training batch `batch` (like Ctrl-C)."""

    def __init__(self, batch):
        super().__init__()
        self.batch = batch

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_stops_training_after_the_step_and_restores_the_handler():
    model = _tiny_gpt()
    stop = callbacks.StopOnInterrupt(print_fn=lambda message: None)
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(callbacks.TrainingInterrupted):  # fit ends at once: no epoch-end validation or samples
        model.fit(*_data(), batch_size=4, epochs=50, verbose=0, callbacks=[stop, _RaiseSignalAt(2)])
    assert stop.interrupted
    assert int(model.optimizer.iterations) == 4  # the signal came after step 3's end: step 4 ran, no fifth
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_metrics_log_and_text_sample_report_every_epoch(tmp_path):
    model, printed = _tiny_gpt(), []
    log = callbacks.MetricsLog(tmp_path / "metrics.json", tokens_per_step=4 * 8, task="demo")
    sample = callbacks.TextSample(TOKENIZER, "ab", num_tokens=6, print_fn=printed.append)
    model.fit(*_data(), batch_size=4, epochs=2, verbose=0, callbacks=[log, sample])

    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["task"] == "demo" and record["epochs"] == 2 and record["steps"] == 16
    assert len(record["history"]["loss"]) == 2
    # tokens/s = the 16 steps of 32 tokens / the seconds. Both figures are
    # rounded: the seconds to 0.01 (the true time is within 0.005 of them),
    # the rate to 0.1 (within 0.05, plus floating-point slack).
    seconds, rate = record["wall_time_s"], record["tokens_per_second"]
    fastest, slowest = 16 * 32 / max(seconds - 0.005, 1e-9), 16 * 32 / (seconds + 0.005)
    assert slowest - 0.051 <= rate <= fastest + 0.051

    assert len(printed) == 2
    blank, header, text, footer = printed[1].split("\n")
    assert blank == "" and header == "--- sample after epoch 2 ---" and footer == "---"
    assert text.startswith("ab") and len(text) == 2 + 6 and set(text) <= set("abcde")


def test_continue_text_slides_past_the_context_window_reproducibly():
    tokenizer, model = TOKENIZER, _tiny_gpt()
    text = continue_text(model, tokenizer, "abcdeabcdeab", num_tokens=8, top_k=3, seed=7)
    assert len(text) == 8 and set(text) <= set("abcde")
    assert continue_text(model, tokenizer, "abcdeabcdeab", num_tokens=8, top_k=3, seed=7) == text

def test_continue_text_within_the_window_is_one_call_to_generate():
    tokenizer, model = TOKENIZER, _tiny_gpt()
    greedy = continue_text(model, tokenizer, "ab", num_tokens=6, temperature=0)
    expected = model.generate(tokenizer.encode("ab")[None], 6, temperature=0)[0, 2:]
    assert greedy == tokenizer.decode(expected)


def test_continue_text_rejects_an_empty_prompt_and_unknown_characters():
    tokenizer, model = TOKENIZER, _tiny_gpt()
    with pytest.raises(ValueError, match="empty prompt"):
        continue_text(model, tokenizer, "", num_tokens=3)
    with pytest.raises(ValueError, match="Character 'x' is not in the tokenizer's vocabulary"):
        continue_text(model, tokenizer, "ax", num_tokens=3)


@pytest.mark.parametrize("name, shifted", [("shakespeare-char", True), ("shakespeare-words", False)])
def test_language_model_training_windows(name, shifted, monkeypatch):
    """Characters: a new grid of windows every pass. Words: always the same
    grid. Validation: the whole validation text, in order, every epoch."""
    task = TASKS[name]
    text = "".join(f"word{i % 97} " for i in range(2000))
    monkeypatch.setattr(task, "texts", lambda config: (text, text[:1000], "test"))
    config = {**task.defaults, "steps": 40, "epochs": 2, "sequence_length": 8, "batch_size": 4}
    data = task.data(config)
    train, window = data.fit_arguments["x"], 8 + 1
    passes = range(0, 20 * train.batches_per_pass, train.batches_per_pass)
    grids = {train.window_starts(step)[0] % window for step in passes}  # the grid of 20 passes
    assert len(grids) > 1 if shifted else grids == {0}
    validation = data.fit_arguments["validation_data"]
    starts = np.concatenate([validation.window_starts(i) for i in range(len(validation))])
    assert starts.tolist() == list(range(0, len(starts) * window, window))
    first_batch = validation[0][0]
    validation.on_epoch_end()
    np.testing.assert_array_equal(validation[0][0], first_batch)


def test_plots_write_png_files(tmp_path):
    plots.plot_loss(
        {"loss": [2.0, 1.5], "val_loss": [2.1, 1.7], "accuracy": [0.3, 0.5], "val_accuracy": [0.2, 0.4]},
        tmp_path / "loss.png",
    )
    weights = [np.random.default_rng(0).dirichlet(np.ones(4), size=(1, 2, 4)) for _ in range(3)]
    plots.plot_attention(weights, ["a", " ", "\n", "b"], tmp_path / "attention.png")
    for name in ("loss.png", "attention.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_SIGNATURE)


def test_shakespeare_bpe_learns_its_vocabulary_from_the_training_text():
    task = TASKS["shakespeare-bpe"]
    rng = np.random.default_rng(0)
    text = " ".join("".join(rng.choice(list("abcdefghij"), size=rng.integers(2, 8))) for _ in range(3000))
    tokenizer = task.tokenizer_for(text, "", {**task.defaults, "vocab_size": 300})
    assert tokenizer.vocab_size == 300
    ids = tokenizer.encode("That is the question, 東京 🙂")
    assert tokenizer.decode(ids) == "That is the question, 東京 🙂"  # any text: every byte is a token
    assert len(tokenizer.encode(text)) < 0.7 * len(text)  # merges learnt from the text shorten it
    with pytest.raises(ValueError, match="--vocab-size for shakespeare-bpe must exceed the 256 bytes"):
        task.tokenizer_for(text, "", {**task.defaults, "vocab_size": 256})


def test_any_text_file_trains_by_characters_even_with_new_ones_in_its_validation_part(tmp_path):
    """`--data` takes any file: a character only in the last 10% (the validation text) still has an id."""
    text = tmp_path / "notes.txt"
    text.write_text("abc " * 90 + "[x]" * 10)
    task = TASKS["shakespeare-char"]
    config = {**task.defaults, "data": str(text), "sequence_length": 8, "batch_size": 2}
    data = task.data(config)
    assert {"[", "]", "x"} <= set(data.tokenizer.decode(list(range(data.tokenizer.vocab_size))))


def test_the_recipe_keeps_its_curve_in_a_release_without_the_library_schedule(monkeypatch):
    import sys

    from keras_tx_tools.training import recipe

    monkeypatch.setitem(sys.modules, "keras_tx_tools.training.schedule", None)  # as a student release ships
    calls = []
    monkeypatch.setattr(recipe, "keras_cosine_schedule", lambda *arguments: calls.append(arguments) or 1e-3)
    recipe.nanogpt_adamw(1e-3, total_steps=2000)
    assert calls == [(1e-3, 2000, 100)]  # Keras' CosineDecay, the same curve, instead of a ModuleNotFoundError
