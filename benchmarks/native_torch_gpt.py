"""A GPT written in plain PyTorch: the baseline keras_tx is measured against.

It is the model students will meet at work (nanoGPT's shape): eager PyTorch,
fused attention through `F.scaled_dot_product_attention`, pre-norm blocks,
learned positions and an output projection tied to the token embedding. Its
layers and parameter count are identical to `keras_tx.GPT` built with the same
arguments, so tokens per second compare like with like.

Example:

>>> import torch
>>> model = NativeTorchGPT(vocab_size=65, max_length=64, embed_dim=128,
...                        num_heads=4, num_layers=4)
>>> model(torch.zeros(2, 64, dtype=torch.long)).shape
torch.Size([2, 64, 65])
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.output = nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        batch, length, embed_dim = x.shape

        def split_heads(t):
            return t.view(batch, length, self.num_heads, -1).transpose(1, 2)

        q, k, v = (split_heads(f(x)) for f in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.output(y.transpose(1, 2).reshape(batch, length, embed_dim))


class Block(nn.Module):
    def __init__(self, embed_dim, num_heads, ff_dim):
        super().__init__()
        self.attention_norm = nn.LayerNorm(embed_dim)
        self.attention = CausalSelfAttention(embed_dim, num_heads)
        self.feed_forward_norm = nn.LayerNorm(embed_dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(embed_dim, ff_dim), nn.GELU(), nn.Linear(ff_dim, embed_dim)
        )

    def forward(self, x):
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.feed_forward_norm(x))


class NativeTorchGPT(nn.Module):
    """Decoder-only transformer: token ids (B, T) -> next-token logits (B, T, V)."""

    def __init__(self, vocab_size, max_length, embed_dim, num_heads, num_layers,
                 ff_dim=None):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)
        self.position_embedding = nn.Embedding(max_length, embed_dim)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, ff_dim or 4 * embed_dim)
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(embed_dim)
        self._init_weights(num_layers)

    def _init_weights(self, num_layers):
        # GPT-2's init: N(0, 0.02), residual projections scaled down by depth.
        for name, parameter in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(parameter)
            elif parameter.dim() == 2:
                std = 0.02
                if name.endswith(("output.weight", "feed_forward.2.weight")):
                    std /= math.sqrt(2 * num_layers)
                nn.init.normal_(parameter, std=std)

    def forward(self, token_ids):
        positions = torch.arange(token_ids.shape[1], device=token_ids.device)
        x = self.token_embedding(token_ids) + self.position_embedding(positions)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x) @ self.token_embedding.weight.T


def keras_layout(native):
    """The weights of `native` as NumPy arrays shaped like keras_tx's: {name: array}.

    (`nn.Linear` stores its weight as (out, in), Keras' `Dense` its kernel as (in, out).)
    """
    linear = {name for name, module in native.named_modules() if isinstance(module, nn.Linear)}
    weights = {name: value.detach().cpu().numpy().copy() for name, value in native.state_dict().items()}
    return {name: value.T if name.endswith(".weight") and name.rsplit(".", 1)[0] in linear else value
            for name, value in weights.items()}


def paired_variables(gpt):
    """Each variable of the keras_tx `GPT` `gpt` with the name of its `NativeTorchGPT` twin."""
    pairs = [(gpt.embedding.token_embedding.embeddings, "token_embedding.weight"),
             (gpt.embedding.position_embedding.embeddings, "position_embedding.weight"),
             (gpt.final_norm.gamma, "final_norm.weight"), (gpt.final_norm.beta, "final_norm.bias")]
    for index, block in enumerate(gpt.blocks):
        prefix = f"blocks.{index}."
        for norm, name in ((block.norm1, "attention_norm"), (block.norm2, "feed_forward_norm")):
            pairs += [(norm.gamma, f"{prefix}{name}.weight"), (norm.beta, f"{prefix}{name}.bias")]
        attention = block.attention
        for dense, name in ((attention.query_dense, "attention.query"),
                            (attention.key_dense, "attention.key"),
                            (attention.value_dense, "attention.value"),
                            (attention.output_dense, "attention.output"),
                            (block.ffn_in, "feed_forward.0"), (block.ffn_out, "feed_forward.2")):
            pairs += [(dense.kernel, f"{prefix}{name}.weight"), (dense.bias, f"{prefix}{name}.bias")]
    return pairs


def copy_weights(native, gpt):
    """Give the built keras_tx `GPT` `gpt` the weights of the `NativeTorchGPT` `native`.

    The two then compute the same function and, trained on the same batches
    with the same recipe, follow the same path (`tests/test_benchmarks.py`).

    >>> import numpy as np
    >>> from keras import ops
    >>> from keras_tx import GPT
    >>> dims = dict(vocab_size=11, max_length=8, embed_dim=16, num_heads=2, num_layers=1)
    >>> native, gpt = NativeTorchGPT(**dims), GPT(**dims)
    >>> token_ids = np.arange(8)[None]
    >>> _ = gpt(token_ids)
    >>> copy_weights(native, gpt)
    >>> native_logits = native(torch.from_numpy(token_ids)).detach().numpy()
    >>> bool(np.allclose(native_logits, ops.convert_to_numpy(gpt(token_ids)), atol=1e-5))
    True
    """
    weights = keras_layout(native)
    for variable, name in paired_variables(gpt):
        variable.assign(weights[name])
