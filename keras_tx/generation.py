"""Generating text: the model's own predictions, fed back in one token at a time.

Each step takes the logits at the last position, samples a token
(`keras_tx.sampling`) and appends it. Run naively, every step passes the
whole sequence through the model again: N new tokens cost N ever longer
passes. But the keys and values of the tokens already seen never change (the
causal mask stops them from looking at the new tokens), so each block can
keep them in a **key/value cache** of `max_length` slots, and a step then
feeds only the newest token: one row of attention per step instead of a
growing square.

`CachedDecoder` runs a model's `decode` step -- `GPT.decode`, which writes
each block's cache -- inside a small Keras model whose caches are
non-trainable variables. Calling it through `predict_on_batch` lets Keras
compile the step (XLA on JAX, a graph on TensorFlow; eager on PyTorch) and
keeps the caches where the model's weights live: only the new token ids go in
and only the logits come out. This module knows the model only through that
step and `predict_on_batch`; it imports no model.
"""

import keras
import numpy as np
from keras import ops

from keras_tx.embedding import validate_token_ids
from keras_tx.sampling import sample_next_token, validate_sampling


def generate(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None, use_cache=True):
    """Extend each prompt by `max_new_tokens` tokens sampled from `model`: see `GPT.generate`.

    Example:

    >>> import numpy as np
    >>> from keras_tx import GPT
    >>> model = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
    >>> generate(model, np.array([[1, 2, 3]]), max_new_tokens=4, temperature=0).shape
    (1, 7)
    """
    validate_sampling(temperature, top_k, top_p)
    prompt_ids = np.asarray(ops.convert_to_numpy(prompt_ids))
    _check_lengths(prompt_ids, max_new_tokens, model.max_length)
    validate_token_ids(prompt_ids, model.vocab_size, model.max_length)
    sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=keras.random.SeedGenerator(seed))
    tokens = prompt_ids.astype("int32")
    unseen = tokens  # the tokens the cache has not seen yet
    decoder = _cached_decoder(model, len(tokens)) if use_cache else None
    for _ in range(max_new_tokens):
        if use_cache:
            logits = decoder.step(unseen, cache_index=tokens.shape[1] - unseen.shape[1])
        else:
            logits = model.predict_on_batch(tokens)[:, -1]
        unseen = ops.convert_to_numpy(sample_next_token(logits, **sampling))[:, None]
        tokens = np.concatenate([tokens, unseen], axis=1)
    return tokens


def _check_lengths(prompt_ids, max_new_tokens, max_length):
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"`max_new_tokens` must be an integer >= 0, got max_new_tokens={max_new_tokens!r}.")
    if prompt_ids.ndim != 2 or prompt_ids.shape[1] == 0:
        raise ValueError(f"`prompt_ids` must have shape (batch, length >= 1), got shape {prompt_ids.shape}.")
    if prompt_ids.shape[1] + max_new_tokens > max_length:
        raise ValueError(
            f"The prompt ({prompt_ids.shape[1]} tokens) plus `max_new_tokens`={max_new_tokens} "
            f"exceeds `max_length`={max_length}."
        )


def _cached_decoder(model, batch_size):
    """The compiled decoding step of `model` for this batch size, made once and reused."""
    # Kept out of Keras' layer tracking: the decoder wraps the model, it is not part of it.
    decoders = model.__dict__.setdefault("_decoders_by_batch_size", {})
    if batch_size not in decoders:
        decoders[batch_size] = CachedDecoder(model, batch_size)
    return decoders[batch_size]


class CachedDecoder(keras.Model):
    """One decoding step of `model` (a `GPT`) for a batch of `batch_size` sequences.

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

    def __init__(self, model, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.model = model  # tracked, so that the compiled step reads the model's current weights
        head_dim = model.embed_dim // model.num_heads
        shape = (batch_size, 2, model.max_length, model.num_heads, head_dim)
        self.caches = [
            self.add_weight(shape=shape, initializer="zeros", trainable=False, dtype=model.compute_dtype, name=f"cache_{i}")
            for i in range(model.num_layers)
        ]
        if not model.built:
            model.build((batch_size, None))
        self.built = True  # all the state there is: the caches above and the model's weights

    def call(self, inputs):
        logits, caches = self.model.decode(
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
