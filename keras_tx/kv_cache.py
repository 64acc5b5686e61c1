"""Decoding one token at a time with a key/value cache, compiled by Keras.

When a GPT generates, the keys and values of the tokens it has already seen
never change (the causal mask stops them from looking at the new tokens). So
instead of running the whole sequence through the model for every new token,
each block keeps its keys and values in a cache of `max_length` slots, and a
step feeds only the newest token: one row of attention per step instead of a
growing square. Generating N tokens then costs O(N) steps of equal size.

`CachedDecoder` wraps a `GPT` in a small Keras model whose caches are
non-trainable variables. Calling it through `predict_on_batch` lets Keras
compile the step (XLA on JAX, a graph on TensorFlow; eager on PyTorch) and
keeps the caches where the model's weights live: only the new token ids go
in and only the logits come out.
"""

import keras
import numpy as np


class CachedDecoder(keras.Model):
    """One decoding step of `gpt` for a batch of `batch_size` sequences.

    Example:

    >>> import numpy as np
    >>> from keras_tx import GPT
    >>> gpt = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
    >>> decoder = CachedDecoder(gpt, batch_size=1)
    >>> decoder.step(np.array([[3, 1, 4]]), cache_index=0).shape  # the prompt
    (1, 50)
    >>> decoder.step(np.array([[1]]), cache_index=3).shape        # one new token
    (1, 50)
    """

    def __init__(self, gpt, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.gpt = gpt
        head_dim = gpt.embed_dim // gpt.num_heads
        shape = (batch_size, 2, gpt.max_length, gpt.num_heads, head_dim)
        self.caches = [
            self.add_weight(shape=shape, initializer="zeros", trainable=False, dtype=gpt.compute_dtype, name=f"cache_{i}")
            for i in range(gpt.num_layers)
        ]
        if not gpt.built:
            gpt.build((batch_size, None))
        self.built = True  # all the state there is: the caches above and the GPT's weights

    def call(self, inputs):
        logits, caches = self.gpt.decode(
            inputs["token_ids"], [cache.value for cache in self.caches], inputs["cache_index"][0]
        )
        for cache, updated in zip(self.caches, caches):
            cache.assign(updated)
        return logits

    def step(self, token_ids, cache_index):
        """Next-token logits `(B, vocab_size)` after `token_ids`, which start at
        position `cache_index` and are added to the cache."""
        inputs = {"token_ids": np.asarray(token_ids, "int32"), "cache_index": np.array([cache_index], "int32")}
        return self.predict_on_batch(inputs)
