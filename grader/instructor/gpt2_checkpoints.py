"""Write the small GPT-2 checkpoints the capstone is graded on: ``python -m grader.instructor.gpt2_checkpoints``.

`transformers` makes one small random GPT-2 and saves it in the two layouts students meet:

* ``save_pretrained/``: today's ``save_pretrained`` (``model.safetensors``, keys under
  ``transformer.``, the tied head left out);
* ``hub_safetensors/`` and ``hub_pytorch/``: the layout of the hub's original ``gpt2``
  checkpoints: the bare ``GPT2Model`` keys (no ``transformer.`` prefix), no ``lm_head.weight``, and
  each block's ``attn.bias`` (the causal mask) and ``attn.masked_bias`` buffers, in
  ``model.safetensors`` and in PyTorch's ``pytorch_model.bin``.

The files are small and committed (``grader/checkpoints/``): the student release has no
`transformers`, and the grader never downloads. Their weights are wider than GPT-2's (0.2, not
0.02), so that the logits are far apart and greedy decoding does not hang on rounding.
"""

import json
import pathlib
import sys

FOLDER = pathlib.Path(__file__).resolve().parent.parent / "checkpoints"
CONFIG = dict(vocab_size=23, n_positions=16, n_embd=12, n_layer=2, n_head=3, initializer_range=0.2,
              activation_function="gelu_new", bos_token_id=None, eos_token_id=None)
"""Every size distinct: 23 tokens, 16 positions, width 12 in 3 heads of 4, 2 blocks, MLP width 48."""


def gpt2_model():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(**CONFIG)).eval()


def hub_state(model):
    """The keys and buffers of the hub's original checkpoints."""
    import torch

    state = {key.removeprefix("transformer."): value for key, value in model.state_dict().items()
             if key != "lm_head.weight"}
    positions = CONFIG["n_positions"]
    for index in range(CONFIG["n_layer"]):
        state[f"h.{index}.attn.bias"] = torch.tril(torch.ones(positions, positions, dtype=torch.uint8)).view(
            1, 1, positions, positions)
        state[f"h.{index}.attn.masked_bias"] = torch.tensor(-1e4)
    return {key: value.contiguous() for key, value in state.items()}


def write(folder=FOLDER):
    import torch
    from safetensors.torch import save_file

    model = gpt2_model()
    model.save_pretrained(folder / "save_pretrained")
    config = json.loads((folder / "save_pretrained" / "config.json").read_text())
    state = hub_state(model)
    for name in ("hub_safetensors", "hub_pytorch"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(state, folder / "hub_safetensors" / "model.safetensors", metadata={"format": "pt"})
    torch.save(state, folder / "hub_pytorch" / "pytorch_model.bin")
    return model


if __name__ == "__main__":
    write()
    print(f"wrote the GPT-2 checkpoints in {FOLDER}", file=sys.stderr)
