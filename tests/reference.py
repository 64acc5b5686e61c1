"""Independent NumPy implementations that the layers are checked against."""

import numpy as np


def softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def attention(query, key, value, mask=None):
    scores = query @ np.swapaxes(key, -1, -2) / np.sqrt(query.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores)
    return weights @ value, weights


def dense(x, layer):
    kernel, bias = (np.asarray(w) for w in layer.get_weights())
    return x @ kernel + bias


def layer_norm(x, layer, epsilon=1e-5):
    gamma, beta = (np.asarray(w) for w in layer.get_weights())
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def gelu(x):
    from math import erf, sqrt

    return 0.5 * x * (1 + np.vectorize(erf)(x / sqrt(2)))


def gelu_approximate(x):
    """GPT-2's `gelu_new`: the tanh approximation of the GELU."""
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


ACTIVATIONS = {"gelu": gelu, "gelu_approximate": gelu_approximate}


def multi_head_self_attention(x, layer, mask=None):
    """`layer` is a keras_tx MultiHeadSelfAttention; mask is (B, 1, T, T) or None."""
    batch, length, width = x.shape
    heads = layer.num_heads

    def split(t):
        return t.reshape(batch, length, heads, width // heads).transpose(0, 2, 1, 3)

    q, k, v = (split(dense(x, d)) for d in (layer.query_dense, layer.key_dense, layer.value_dense))
    out, weights = attention(q, k, v, mask)
    out = out.transpose(0, 2, 1, 3).reshape(batch, length, width)
    return dense(out, layer.output_dense), weights


def transformer_block(x, block, mask=None):
    def attend(t):
        return multi_head_self_attention(t, block.attention, mask)[0]

    def mlp(t):
        return dense(ACTIVATIONS[block.activation](dense(t, block.ffn_in)), block.ffn_out)

    if block.norm_first:
        x = x + attend(layer_norm(x, block.norm1))
        return x + mlp(layer_norm(x, block.norm2))
    x = layer_norm(x + attend(x), block.norm1)
    return layer_norm(x + mlp(x), block.norm2)


def causal(length):
    return np.tril(np.ones((length, length), bool))[None, None]
