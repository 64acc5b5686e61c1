"""`keras-tx train --model exercises`: the student's own GPT, trained, sampled and loaded back by the tools.

Each test works in a folder of its own holding `exercises/`: the solutions
copied in (a finished student), the stubs (a student who has not begun), or
the solutions with one part undone or broken.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from grader.submission import load_submission
from keras_tx_tools.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--embed-dim", "16", "--num-heads", "2", "--num-layers", "1"]
TEXT = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nAy me!\n\n" * 40


def course_folder(folder, exercises="solutions"):
    """`folder` with `exercises/` copied from the repository's `exercises` (stubs) or `solutions` (finished)."""
    shutil.copytree(ROOT / exercises, folder / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture
def finished(tmp_path, monkeypatch):
    """A course folder whose exercises are finished (the solutions), as the working directory."""
    monkeypatch.chdir(course_folder(tmp_path))
    return tmp_path


def test_the_students_gpt_trains_generates_and_loads_back(finished, capsys):
    out = finished / "run"
    (finished / "text.txt").write_text(TEXT)
    status = main([
        "train", "shakespeare-char", "--model", "exercises", "--data", "text.txt", *TINY,
        "--sequence-length", "16", "--steps", "4", "--epochs", "2", "--sample-tokens", "8", "--out", str(out),
    ])
    assert status == 0
    printed = capsys.readouterr().out
    assert "shakespeare-char: the GPT of exercises/model.py" in printed
    assert printed.count("--- sample after epoch") == 2
    record = json.loads((out / "metrics.json").read_text())
    assert record["model"] == "exercises" and record["steps"] == 4 and "--model exercises" in record["command"]
    for name in ("model.keras", "tokenizer.json", "loss.png", "attention.png"):
        assert (out / name).stat().st_size > 0

    from keras_tx_tools.training import saved

    model = saved.load_model(out / "model.keras")
    assert type(model.gpt).__module__ == "exercises.model"
    ids = np.array([[1, 2, 3, 4]], dtype="int32")
    assert model.generate(ids, 4, temperature=0).shape == (1, 8)
    assert main(["generate", str(out / "model.keras"), "--prompt", "ROMEO:", "--num-tokens", "12", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")
    assert main(["evaluate", str(out / "model.keras")]) == 0
    assert f"val_loss               {record['results']['val_loss']}" in capsys.readouterr().out


def test_top_k_waits_for_the_students_own_sampler(finished, capsys):
    shutil.copy(ROOT / "exercises" / "sampling.py", finished / "exercises" / "sampling.py")  # not written yet
    assert main(["train", "reverse", "--model", "exercises", *TINY, "--steps", "1", "--num-validation", "8",
                 "--out", "run"]) == 0
    capsys.readouterr()
    assert main(["generate", "run/model.keras", "--prompt", "0123|", "--top-k", "3"]) == 1
    error = capsys.readouterr().err
    assert "--top-k and --top-p need your own sample_next_token in exercises/sampling.py" in error


@pytest.mark.parametrize(
    "exercises, undo, message",
    [
        ("exercises", None, "exercises/model.py: GPT is not written yet (NotImplementedError in GPT.__init__)"),
        (
            "solutions",
            ("model.py", "        x = x + self.attention(self.norm1(x), attention_mask)\n", "        raise NotImplementedError\n"),
            "exercises/model.py: GPT is not written yet (NotImplementedError in TransformerBlock.call)",
        ),
        (
            "solutions",
            ("attention.py", "merge_heads(attended)", "merge_heads(attended, 2)"),
            "exercises/attention.py: GPT fails in MultiHeadSelfAttention.call, line {line}: TypeError: merge_heads() "
            "takes 1 positional argument but 2 were given",
        ),
        (
            "solutions",
            ("positional_embedding.py", "import keras\n", "import keras\nimport no_such_module\n"),
            "exercises/positional_embedding.py fails to import, line {line}: ModuleNotFoundError: "
            "No module named 'no_such_module'",
        ),
        (
            "solutions",
            ("model.py", "return self.lm_head(self.final_norm(x))", "return self.final_norm(x)"),
            "exercises/model.py: GPT returns an output of shape (1, 12, 16) for token ids of shape (1, 12); "
            "expected the logits, (1, 12, 11) (batch, tokens, vocab_size).",
        ),
    ],
)
def test_an_unfinished_or_broken_gpt_is_one_line_naming_the_exercise(
    exercises, undo, message, tmp_path, monkeypatch, capsys
):
    """The message names the line of the edit ({line}: where the edit's last line ends up)."""
    monkeypatch.chdir(course_folder(tmp_path, exercises))
    if undo:
        file, old, new = undo
        edit(tmp_path / "exercises" / file, old, new)
        text = (tmp_path / "exercises" / file).read_text()
        message = message.format(line=text[: text.index(new) + len(new.rstrip())].count("\n") + 1)
    status = main(["train", "reverse", "--model", "exercises", *TINY, "--half-length", "6", "--steps", "1",
                   "--num-validation", "8", "--out", "run"])
    error = capsys.readouterr().err.strip()
    assert status == 1
    assert error.startswith(f"keras-tx train: error: {message}"), error
    assert len(error.splitlines()) == 1


def test_without_the_course_folder_the_error_says_where_to_run(tmp_path, monkeypatch, capsys):
    from keras_tx_tools.training import course_model

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(course_model, "PROJECT_ROOT", tmp_path)
    assert main(["train", "reverse", "--model", "exercises", "--steps", "1", "--out", "run"]) == 1
    assert "--model exercises reads exercises/model.py, and there is none in" in capsys.readouterr().err


def test_the_students_own_parts_replace_the_tools_once_written(finished, monkeypatch):
    from keras_tx_tools.training.course_model import own_part

    sampling = finished / "exercises" / "sampling.py"
    sampling.unlink()
    assert own_part("exercises", "sampler") is None  # no exercises/sampling.py
    sampling.write_text("def sample_next_token(logits, temperature, top_k, top_p, seed):\n    raise NotImplementedError\n")
    assert own_part("exercises", "sampler") is None  # the stub
    monkeypatch.delitem(sys.modules, "exercises.sampling")  # written since: read it again
    sampling.write_text(textwrap.dedent("""
        import numpy as np

        def sample_next_token(logits, temperature, top_k, top_p, seed):
            return np.full(logits.shape[:1], 2)
    """))
    sampler = own_part("exercises", "sampler")
    assert sampler is not None

    from keras_tx_tools.training.course_model import CourseGPT

    model = CourseGPT("exercises", vocab_size=5, max_length=6, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16)
    assert model.generate(np.array([[1]]), 3, top_k=2).tolist() == [[1, 2, 2, 2]]


@pytest.mark.course
def test_the_student_release_trains_without_keras_tx(tmp_path):
    """The release ships keras_tx_tools but not keras_tx: a package that refuses to import stands in for its absence."""
    shadow = tmp_path / "shadow" / "keras_tx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('keras_tx is not part of the student release')\n")
    course = course_folder(tmp_path / "course")
    script = textwrap.dedent("""
        from keras_tx_tools.cli import main
        assert main(["train", "reverse", "--model", "exercises", "--embed-dim", "16", "--num-heads", "2",
                     "--num-layers", "1", "--steps", "2", "--num-validation", "8", "--out", "run"]) == 0
        assert main(["generate", "run/model.keras", "--prompt", "0123|", "--num-tokens", "4"]) == 0
        assert main(["evaluate", "run/model.keras"]) == 0
        import sys
        assert "keras_tx" not in sys.modules or sys.modules["keras_tx"] is None
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    env.setdefault("KERAS_BACKEND", "torch")
    process = subprocess.run([sys.executable, "-c", script], cwd=course, env=env, capture_output=True, text=True,
                             timeout=600)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-3000:]
    assert "reverse: the GPT of exercises/model.py" in process.stdout


@pytest.mark.slow
def test_the_students_finished_gpt_learns_the_reversal(finished):
    """The default reversal run, on the student's GPT: the second half copied, the first half at chance."""
    assert main(["train", "reverse", "--model", "exercises", "--out", "run"]) == 0
    results = json.loads(pathlib.Path("run", "metrics.json").read_text())["results"]
    assert results["second_half_accuracy"] >= 0.99
    assert abs(results["first_half_accuracy"] - results["chance_accuracy"]) <= 0.05


def test_the_exercises_loss_and_schedule_train_as_the_tools_own():
    """next_token_loss shifts by one itself, so it is given the windows' targets with a first column before
    them; WarmupCosine, with a floor of a tenth of the peak, is nanoGPT's schedule."""
    from keras_tx_tools.training.course_model import loss_of_targets, schedule_of_recipe
    from keras_tx_tools.training.loss import SparseCrossEntropy
    from keras_tx_tools.training.recipe import keras_cosine_schedule
    from keras_tx_tools.training.schedule import nanogpt_schedule

    training = load_submission(ROOT / "solutions")["training"]
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(2, 5, 7)).astype("float32"), rng.integers(0, 7, (2, 5))
    np.testing.assert_allclose(float(loss_of_targets(training.next_token_loss)(targets, logits)),
                               float(SparseCrossEntropy()(targets, logits)), rtol=1e-6)
    own, tools = schedule_of_recipe(training.WarmupCosine)(1e-3, 2000, 100), nanogpt_schedule(1e-3, 2000, 100)
    keras_own = keras_cosine_schedule(1e-3, 2000, 100)  # a release's, before WarmupCosine is written
    steps = (0, 50, 100, 1000, 1999, 2000, 2500)
    for schedule in (own, keras_own):
        np.testing.assert_allclose([float(schedule(step)) for step in steps], [float(tools(step)) for step in steps],
                                   rtol=1e-5, atol=1e-9)


def test_the_course_gpt_starts_from_the_librarys_initialisation(finished):
    """Trained by the tools, the course's GPT starts as the library's: normal(0.02), the residual branches'
    last projections narrower by sqrt(2 * num_layers), biases zero. Keras' defaults start far wider."""
    from keras_tx_tools.training.course_model import CourseGPT

    model = CourseGPT("exercises", vocab_size=64, max_length=32, embed_dim=64, num_heads=2, num_layers=2, ff_dim=256)
    model.initialise_like_gpt2()
    gpt = model.gpt
    std = lambda variable: float(np.std(np.asarray(variable.numpy())))  # noqa: E731
    for matrix in (gpt.embedding.token_embedding.embeddings, gpt.lm_head.kernel,
                   gpt.blocks[1].attention.query_dense.kernel, gpt.blocks[0].ffn_in.kernel):
        assert std(matrix) == pytest.approx(0.02, rel=0.1)
    for matrix in (gpt.blocks[0].attention.output_dense.kernel, gpt.blocks[1].ffn_out.kernel):
        assert std(matrix) == pytest.approx(0.01, rel=0.1)
    assert not np.any(np.asarray(gpt.blocks[0].ffn_in.bias.numpy()))


def test_a_course_gpt_with_other_names_keeps_keras_initialisation_and_says_why(finished):
    edit(pathlib.Path("exercises/model.py"), "self.ffn_out = ", "self.feed_forward_out = ")
    edit(pathlib.Path("exercises/model.py"), "self.ffn_out(", "self.feed_forward_out(")
    from keras_tx_tools.training.course_model import CourseGPT

    model = CourseGPT("exercises", vocab_size=8, max_length=4, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16)
    with pytest.warns(UserWarning, match=r"exercises/model.py keeps Keras' initialisation: .*blocks\.0\.ffn_out"):
        model.initialise_like_gpt2()
