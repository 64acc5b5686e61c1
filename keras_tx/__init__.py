"""keras_tx: a GPT-style transformer built from scratch in Keras 3.

The same code runs on the TensorFlow, PyTorch and JAX backends. Read the
modules in the order a token travels:

1. `keras_tx.embedding` -- token ids to vectors, plus positions;
2. `keras_tx.attention` -- scaled dot-product attention (Q, K, V);
3. `keras_tx.masking` -- what each query may not see (the future, padding);
4. `keras_tx.self_attention` -- many heads, projections and the KV cache;
5. `keras_tx.transformer_block` -- attention + MLP, residuals, LayerNorm;
6. `keras_tx.transformer` -- embeddings, a stack of blocks, a final LayerNorm:
   what the two models share;
7. `keras_tx.gpt` -- the language model;
8. `keras_tx.sampling` -- temperature, top-k and top-p;
9. `keras_tx.generation` -- text, one sampled token at a time, with the cache;
10. `keras_tx.classifier` -- an encoder that classifies sequences;
11. `keras_tx.parameters` -- a GPT's parameters counted from its configuration;
12. `keras_tx.distribution` -- sharding a GPT over many devices (JAX).
"""

import importlib.metadata

from keras_tx.attention import attention_weights, scaled_dot_product_attention
from keras_tx.classifier import TransformerClassifier
from keras_tx.distribution import gpt_layout_map
from keras_tx.embedding import TokenAndPositionEmbedding, sinusoidal_position_encoding
from keras_tx.gpt import GPT
from keras_tx.masking import apply_mask, attention_mask, causal_mask, masked_fill_value, padding_mask
from keras_tx.parameters import ParameterGroup, parameter_breakdown, parameter_count
from keras_tx.sampling import sample_next_token, top_k_filter, top_p_filter
from keras_tx.self_attention import MultiHeadSelfAttention
from keras_tx.transformer_block import TransformerBlock

try:
    __version__ = importlib.metadata.version("keras-tx")
except importlib.metadata.PackageNotFoundError:  # the source tree on sys.path, not installed
    __version__ = "unknown"
"""The installed release: pyproject.toml's version, which `keras-tx --version` prints too."""

__all__ = [
    "GPT",
    "MultiHeadSelfAttention",
    "ParameterGroup",
    "TokenAndPositionEmbedding",
    "TransformerBlock",
    "TransformerClassifier",
    "apply_mask",
    "attention_mask",
    "attention_weights",
    "causal_mask",
    "gpt_layout_map",
    "masked_fill_value",
    "padding_mask",
    "parameter_breakdown",
    "parameter_count",
    "sample_next_token",
    "scaled_dot_product_attention",
    "sinusoidal_position_encoding",
    "top_k_filter",
    "top_p_filter",
]
