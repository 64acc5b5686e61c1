"""`keras-tx generate --checkpoint`, `keras-tx attention` and `keras-tx params` end to end."""

import pytest
import torch
from hf_gpt2 import tiny_checkpoint
from matplotlib import image
from transformers import GPT2LMHeadModel, GPT2TokenizerFast

from keras_tx import GPT
from keras_tx.parameters import PRESETS
from keras_tx_tools.cli import main
from keras_tx_tools.data import CharTokenizer, tokenizers
from keras_tx_tools.commands import params
from keras_tx_tools.gpt2.checkpoint import load_gpt2

PROMPT = "The cat sat on the"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("gpt2"))


def test_generate_from_a_checkpoint_prints_what_transformers_writes(checkpoint, capsys):
    tokenizer = GPT2TokenizerFast(str(checkpoint / "vocab.json"), str(checkpoint / "merges.txt"))
    prompt_ids = torch.as_tensor([tokenizer.encode(PROMPT)])
    reference = GPT2LMHeadModel.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        output = reference.generate(
            prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=10, do_sample=False, pad_token_id=0
        )
    expected = PROMPT + tokenizer.decode(output[0, prompt_ids.shape[1] :])
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(checkpoint), "--prompt", PROMPT, "--num-tokens", "10", "--temperature", "0"]) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_generate_needs_one_model(checkpoint, capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--prompt", PROMPT])
    assert "one of the arguments MODEL --checkpoint is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # checked before a backend loads: a usage error
        main(["generate", "--checkpoint", str(checkpoint / "missing"), "--prompt", PROMPT])
    assert exited.value.code == 2 and "there is no folder" in capsys.readouterr().err
    (checkpoint / "empty").mkdir()
    assert main(["generate", "--checkpoint", str(checkpoint / "empty"), "--prompt", PROMPT]) == 1
    assert "keras-tx generate: error: No config.json in" in capsys.readouterr().err


@pytest.mark.parametrize("layer, rows", [("2", 1), ("all", 2)])
def test_attention_draws_one_panel_per_head(checkpoint, tmp_path, capsys, layer, rows):
    out = tmp_path / "attention.png"
    assert main(["attention", "--checkpoint", str(checkpoint), "--prompt", PROMPT, "--out", str(out), "--layer", layer]) == 0
    assert f"{rows} layer(s) x 4 heads over 5 tokens" in capsys.readouterr().out
    height, width, _ = image.imread(out).shape
    assert width > 4 * 250 and 250 * rows < height < 400 * rows  # four panels side by side, a row per layer


def test_attention_refuses_a_layer_the_model_lacks(checkpoint, capsys):
    assert main(["attention", "--checkpoint", str(checkpoint), "--prompt", PROMPT, "--layer", "3"]) == 1
    assert "--layer 3 does not exist: the model has 2 layers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["attention", "--checkpoint", str(checkpoint), "--prompt", PROMPT, "--layer", "last"])
    assert "must be a layer number >= 1 or 'all', got last" in capsys.readouterr().err


def test_params_prints_the_count_of_the_loaded_model(checkpoint, capsys):
    model = load_gpt2(checkpoint)
    flags = ["--vocab-size", str(model.vocab_size), "--max-length", "64", "--embed-dim", "32"]
    capsys.readouterr()
    assert main(["params", *flags, "--num-heads", "4", "--num-layers", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[-1].split() == ["total", f"{model.count_params():,}"]
    assert table[-2].endswith("tied to the token embedding")


def test_params_presets_give_the_published_counts(capsys):
    assert main(["params", "--preset", "gpt2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["total", "124,439,808"]
    assert main(["params", "--preset", "gpt3", "--matrices-only"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["total", "175,181,291,520"]
    assert set(params.PRESET_NAMES) == set(PRESETS)
    assert main(["params", "--embed-dim", "64"]) == 1
    assert "give --preset or all of --vocab-size, --max-length, --num-heads, --num-layers" in capsys.readouterr().err


def test_attention_of_a_model_saved_by_training(tmp_path, capsys):
    tokenizer = CharTokenizer.from_text("abcdef")
    model = GPT(tokenizer.vocab_size, max_length=8, embed_dim=8, num_heads=2, num_layers=3)
    model(tokenizer.encode("abc")[None])
    model.save(tmp_path / "model.keras")
    tokenizers.save(tokenizer, tmp_path / "tokenizer.json")
    out = tmp_path / "attention.png"
    assert main(["attention", str(tmp_path / "model.keras"), "--prompt", "fade", "--out", str(out)]) == 0
    assert "3 layer(s) x 2 heads over 4 tokens" in capsys.readouterr().out
    assert out.stat().st_size > 0
