"""Counting a GPT's parameters with pencil and paper, before building it.

Every parameter of a `GPT` sits in a table or a matrix whose shape follows
from the configuration. With ``V`` tokens, context ``T``, width ``C``, MLP
width ``F`` and ``L`` blocks:

* the token embedding is ``V x C`` and the learned positions ``T x C``;
* each block has four ``C x C`` attention projections (query, key, value,
  output), an MLP of ``C x F`` and ``F x C``, a bias for each of those six
  matrices, and two LayerNorms of ``2 C`` (a scale and a shift);
* the final LayerNorm has ``2 C``; the unembedding ``C x V`` costs nothing
  when it is tied to the token embedding.

The matrices dominate: per block ``4 C^2 + 2 C F``, that is ``12 C^2`` with
``F = 4 C``. The famous count of GPT-3's 175 billion parameters keeps only
them, and counts the embedding and the unembedding as two matrices of
617,558,016 each (``matrices_only=True``).

Example: GPT-2 small, the smallest GPT-2 checkpoint, and GPT-3.

>>> parameter_count(**PRESETS["gpt2"])
124439808
>>> parameter_count(**PRESETS["gpt3"], matrices_only=True)  # the famous count
175181291520
>>> parameter_count(**PRESETS["gpt3"])  # with biases, norms and positions, tied
174604259328
>>> for group in parameter_breakdown(**PRESETS["gpt2"])[:4]:
...     print(f"{group.name:<16} {str(group.shape):<14} x{group.copies:<3} {group.total:>11,}")
token embedding  (50257, 768)   x1    38,597,376
positions        (1024, 768)    x1       786,432
query kernel     (768, 768)     x12    7,077,888
query bias       (768,)         x12        9,216
"""

import math
from typing import NamedTuple

from keras_tx.embedding import POSITIONAL_KINDS
from keras_tx.validation import check_positive_integers

PRESETS = {
    "gpt2": dict(vocab_size=50257, max_length=1024, embed_dim=768, num_heads=12, num_layers=12),
    "gpt2-medium": dict(vocab_size=50257, max_length=1024, embed_dim=1024, num_heads=16, num_layers=24),
    "gpt2-large": dict(vocab_size=50257, max_length=1024, embed_dim=1280, num_heads=20, num_layers=36),
    "gpt2-xl": dict(vocab_size=50257, max_length=1024, embed_dim=1600, num_heads=25, num_layers=48),
    "gpt3": dict(vocab_size=50257, max_length=2048, embed_dim=12288, num_heads=96, num_layers=96),
}
"""`GPT` configurations of published models (GPT-3: the 175B model), for `parameter_count(**PRESETS[name])`."""


class ParameterGroup(NamedTuple):
    """One weight of the model, repeated `copies` times (once per block for a block's weights).

    `size` is the number of parameters of one copy; `total` of all copies,
    which is 0 for a `tied` weight: it is another weight, counted there.
    """

    name: str
    shape: tuple
    copies: int = 1
    tied: bool = False

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def total(self):
        return 0 if self.tied else self.size * self.copies


def parameter_breakdown(
    vocab_size,
    max_length,
    embed_dim,
    num_heads,
    num_layers,
    ff_dim=None,
    tie_weights=True,
    positional="learned",
    matrices_only=False,
):
    """The weights of a `GPT` of this configuration, from the embedding to the unembedding.

    The arguments are those of `GPT` (`num_heads` changes how the matrices
    are split, not their size). With `matrices_only`, only the weight
    matrices are listed, the unembedding among them even when it is tied:
    no biases, LayerNorms or position tables. Returns a list of
    `ParameterGroup`.
    """
    width, hidden, everything = embed_dim, ff_dim or 4 * embed_dim, not matrices_only
    _validate(vocab_size, max_length, embed_dim, num_heads, num_layers, hidden, positional)
    groups = [ParameterGroup("token embedding", (vocab_size, width))]
    if positional == "learned" and everything:
        groups.append(ParameterGroup("positions", (max_length, width)))
    for name, shape in (
        ("query", (width, width)),
        ("key", (width, width)),
        ("value", (width, width)),
        ("attention output", (width, width)),
        ("MLP in", (width, hidden)),
        ("MLP out", (hidden, width)),
    ):
        groups.append(ParameterGroup(f"{name} kernel", shape, num_layers))
        if everything:
            groups.append(ParameterGroup(f"{name} bias", shape[-1:], num_layers))
    if everything:
        groups.append(ParameterGroup("attention norm", (2, width), num_layers))
        groups.append(ParameterGroup("MLP norm", (2, width), num_layers))
        groups.append(ParameterGroup("final norm", (2, width)))
    groups.append(ParameterGroup("unembedding", (width, vocab_size), tied=tie_weights and everything))
    return groups


def parameter_count(*args, **kwargs):
    """The number of parameters of a `GPT` of this configuration: it equals
    `model.count_params()`. The arguments are those of `parameter_breakdown`.

    >>> parameter_count(vocab_size=65, max_length=256, embed_dim=384, num_heads=6, num_layers=6)
    10770816
    """
    return sum(group.total for group in parameter_breakdown(*args, **kwargs))


def _validate(vocab_size, max_length, embed_dim, num_heads, num_layers, ff_dim, positional):
    check_positive_integers(vocab_size=vocab_size, max_length=max_length, embed_dim=embed_dim, num_heads=num_heads,
                            num_layers=num_layers, ff_dim=ff_dim)
    if embed_dim % num_heads:
        raise ValueError(
            f"`embed_dim` must be divisible by `num_heads`, got embed_dim={embed_dim}, num_heads={num_heads}."
        )
    if positional not in POSITIONAL_KINDS:
        raise ValueError(f"`positional` must be one of {POSITIONAL_KINDS}, got positional={positional!r}.")
