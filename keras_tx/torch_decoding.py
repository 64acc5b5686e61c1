"""The cached decoding step in PyTorch's own operations: keras_tx's one backend-specific seam.

**Why it exists.** A decoding step pushes one token through every sublayer, so
its cost is the price of each call, not arithmetic. JAX and TensorFlow compile
`GPT.decode` into one program (XLA, a graph) and pay that price once. PyTorch
runs the step eagerly, one Python call at a time, and Keras' dispatch costs
ten to twenty times the operation itself on such small tensors (a `Dense`
100 µs against 5 µs for `F.linear`, a `LayerNormalization` 82 µs against
6.5 µs, and `ops.slice_update` copies the whole cache to write one slot).
Compiling the step with `torch.compile` does not help: Dynamo recompiles
Keras' layer frames per layer class and call signature until it gives up.

So on the PyTorch backend, for float32 models, `generate` runs this step
instead: the same math as `GPT.decode` -- embeddings, then per block
LayerNorm, the query/key/value projections, attention over the cache, the
output projection, residuals and the GELU MLP, then the final LayerNorm and
the unembedding -- written with `torch.nn.functional` on the layers' own
variables. It writes each new key and value into the cache in place and
attends over the written slots only. Nothing else in keras_tx knows a
backend; `tests/test_generation.py` checks this step against `GPT.decode`
and against recomputation, token for token.

Example:

>>> import keras, numpy as np
>>> from keras_tx import GPT
>>> if keras.backend.backend() == "torch":
...     model = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
...     model.build((1, None))
...     caches = [keras.ops.zeros((1, 2, 8, 4, 8)) for _ in model.blocks]
...     step = TorchDecoding(model)
...     logits = step(np.array([[3, 1, 4]]), caches, cache_index=0)
...     assert tuple(logits.shape) == (1, 50)
"""

import torch
import torch.nn.functional as F

from keras_tx.embedding import sinusoidal_position_encoding


class TorchDecoding:
    """`GPT.decode` for an unpadded batch, in PyTorch: `step(token_ids, caches, cache_index) -> logits`.

    `caches` are the `(B, 2, S, num_heads, head_dim)` torch tensors of
    `GPT.decode`; the step writes the keys and values of `token_ids` into them
    in place. Returns the float32 `(B, vocab_size)` logits after the last token.
    """

    def __init__(self, model):
        self.model = model

    @torch.no_grad()
    def __call__(self, token_ids, caches, cache_index):
        model = self.model
        embedding = model.embedding
        token_ids = torch.as_tensor(token_ids, dtype=torch.long, device=_value(embedding.token_embedding.embeddings).device)
        length = token_ids.shape[1]
        x = F.embedding(token_ids, _value(embedding.token_embedding.embeddings))
        if embedding.position_embedding is not None:
            x = x + _value(embedding.position_embedding.embeddings)[cache_index: cache_index + length]
        else:
            x = x + sinusoidal_position_encoding(length, model.embed_dim, start=cache_index)
        for block, cache in zip(model.blocks, caches):
            x = _block(block, x, cache, cache_index)
        x = _layer_norm(model.final_norm, x[:, -1])
        if model.lm_head is None:  # tied: the token embedding, transposed
            return F.linear(x, _value(embedding.token_embedding.embeddings))
        return x @ _value(model.lm_head.kernel)


def _value(variable):
    return variable.value


def _dense(layer, x):
    """A Keras `Dense`: `x @ kernel + bias`, the kernel `(in, out)`."""
    bias = _value(layer.bias) if layer.use_bias else None
    return F.linear(x, _value(layer.kernel).T, bias)


def _layer_norm(layer, x):
    return F.layer_norm(x, x.shape[-1:], _value(layer.gamma), _value(layer.beta), layer.epsilon)


def _block(block, x, cache, cache_index):
    """`TransformerBlock.decode` of a GPT's pre-LN block: attention with the cache, then the MLP."""
    x = x + _attention(block.attention, _layer_norm(block.norm1, x), cache, cache_index)
    approximate = "tanh" if block.activation == "gelu_approximate" else "none"
    return x + _dense(block.ffn_out, F.gelu(_dense(block.ffn_in, _layer_norm(block.norm2, x)), approximate=approximate))


def _attention(attention, x, cache, cache_index):
    """`MultiHeadSelfAttention.decode`: new keys and values written in place, the written slots attended."""
    batch, length, _ = x.shape
    end = cache_index + length
    heads = (batch, length, attention.num_heads, attention.head_dim)
    query, key, value = (_dense(dense, x).view(heads)
                         for dense in (attention.query_dense, attention.key_dense, attention.value_dense))
    cache[:, 0, cache_index:end] = key
    cache[:, 1, cache_index:end] = value
    # (B, T, H, D) -> (B, H, T, D); keys and values over the slots written so far.
    query = query.transpose(1, 2)
    keys, values = (cache[:, i, :end].transpose(1, 2) for i in (0, 1))
    # A new token sees every written slot up to its own position (none after it).
    mask = None if length == 1 else torch.ones(length, end, dtype=torch.bool, device=x.device).tril(cache_index)
    output = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, scale=attention.scale)
    return _dense(attention.output_dense, output.transpose(1, 2).reshape(batch, length, -1))
