"""The capstone's checkpoints and reference: the solution's GPT, loaded with them, is `transformers`' GPT-2."""

import numpy as np
import pytest
import torch
from keras import ops

from grader.instructor import gpt2_checkpoints
from grader.submission import load_submission
from test_grader import ROOT

LAYOUTS = ("save_pretrained", "hub_safetensors", "hub_pytorch")


@pytest.fixture(scope="module")
def capstone():
    return load_submission(ROOT / "solutions")["gpt2"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_solution_gives_transformers_logits_and_greedy_tokens(capstone, layout):
    reference = gpt2_checkpoints.gpt2_model()
    model = capstone.gpt2_model(str(gpt2_checkpoints.FOLDER / layout))
    token_ids = np.random.default_rng(0).integers(0, gpt2_checkpoints.CONFIG["vocab_size"], (2, 9))
    with torch.no_grad():
        expected = reference(torch.as_tensor(token_ids)).logits.numpy()
        greedy = reference.generate(torch.as_tensor(token_ids[:, :4]), max_new_tokens=8, do_sample=False,
                                    pad_token_id=0).numpy()
    np.testing.assert_allclose(ops.convert_to_numpy(model(token_ids)), expected, atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(ops.convert_to_numpy(capstone.generate(model, token_ids[:, :4], 8)), greedy)


def test_the_committed_checkpoints_are_what_the_maker_writes(tmp_path):
    gpt2_checkpoints.write(tmp_path)
    for layout in LAYOUTS:
        for path in (gpt2_checkpoints.FOLDER / layout).iterdir():
            if path.suffix in (".safetensors", ".json"):
                assert (tmp_path / layout / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("layout", ["save_pretrained", "hub_safetensors", "hub_pytorch"])
def test_every_gpt_check_builds_the_checkpoints_size(layout):
    """The model, generation and GPT-2 checks share `GPT_SIZES`; the GPT-2 checks load these checkpoints into it."""
    import json

    from grader.reference import GPT_SIZES

    config = json.loads((ROOT / "grader" / "checkpoints" / layout / "config.json").read_text())
    assert GPT_SIZES == {"vocab_size": config["vocab_size"], "max_length": config["n_positions"],
                         "embed_dim": config["n_embd"], "num_heads": config["n_head"], "num_layers": config["n_layer"],
                         "ff_dim": 4 * config["n_embd"]}
