"""Generating text: the model's own predictions, fed back in one token at a time.

Each step takes the logits at the last position, samples a token
(`keras_tx.sampling`) and appends it. Run naively, every step passes the
whole sequence through the model again: N new tokens cost N ever longer
passes. But the keys and values of the tokens already seen never change (the
causal mask stops them from looking at the new tokens), so each block can
keep them in a **key/value cache**, one slot per position, and a step then
feeds only the newest token: one row of attention per step instead of a
growing square.

`CachedDecoder` runs a model's `decode` step -- `GPT.decode`, which writes
each block's cache -- inside a small Keras model whose caches are
non-trainable variables. Calling it through `predict_on_batch` lets Keras
compile the step (XLA on JAX, a graph on TensorFlow; eager on PyTorch) and
keeps the caches where the model's weights live. `CachedSampler` compiles the
sampling into the same step: only the new token ids go in and only the chosen
ones come out. This module knows the model only through that step and
`predict_on_batch`; it imports no model.

A cache needs no more slots than the tokens it will hold. `generate` sizes it
to the prompt plus the new tokens, rounded up to a power of two
(`cache_length`), so that writing the cache and attending over it cost what
the generation needs, not what the model's context allows (1,024 positions
for GPT-2), while the compiled backends compile one step per power of two,
not one per length.
"""

import numbers

import keras
import numpy as np
from keras import ops

from keras_tx.embedding import validate_token_ids
from keras_tx.sampling import sample_next_token, validate_sampling
from keras_tx.validation import check_positive_integers, is_number


def generate(
    model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None, use_cache=True,
    padding_mask=None,
):
    """Extend each prompt by `max_new_tokens` tokens sampled from `model`: see `GPT.generate`.

    Example: two prompts of 3 and 1 tokens, the short one padded on the left.

    >>> import numpy as np
    >>> from keras_tx import GPT
    >>> model = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
    >>> prompts = np.array([[1, 2, 3], [0, 0, 7]])
    >>> real = np.array([[True, True, True], [False, False, True]])
    >>> generate(model, prompts, max_new_tokens=4, temperature=0, padding_mask=real).shape
    (2, 7)
    """
    temperature, top_k, top_p = validate_sampling(temperature, top_k, top_p)
    prompt_ids = np.asarray(ops.convert_to_numpy(prompt_ids))
    max_new_tokens = _check_lengths(prompt_ids, max_new_tokens, model.max_length)
    validate_token_ids(prompt_ids, model.vocab_size, model.max_length)
    slots = cache_length(prompt_ids.shape[1] + max_new_tokens, model.max_length)
    slots_mask = None  # which of the cache's slots hold real tokens
    if padding_mask is not None:
        slots_mask = _slots_mask(padding_mask, prompt_ids, slots)
    tokens = prompt_ids.astype("int32")
    if use_cache:
        sampler = _cached_sampler(model, len(tokens), slots, temperature == 0, top_k, top_p)
        sampler.reseed(seed)
    else:
        sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed_generator(seed))
    unseen = tokens  # the tokens the cache has not seen yet
    for _ in range(max_new_tokens):
        if use_cache:
            cache_index = tokens.shape[1] - unseen.shape[1]
            unseen = sampler.next_tokens(unseen, cache_index, slots_mask, temperature)[:, None]
        else:
            logits = _recomputed_logits(model, tokens, slots_mask)
            unseen = ops.convert_to_numpy(sample_next_token(logits, **sampling))[:, None]
        tokens = np.concatenate([tokens, unseen], axis=1)
    return tokens


def _recomputed_logits(model, tokens, slots_mask):
    """The next-token logits from a pass over the whole prefix (compiled unless padded)."""
    if slots_mask is None:
        return model.predict_on_batch(tokens)[:, -1]
    return ops.convert_to_numpy(model(tokens, padding_mask=slots_mask[:, : tokens.shape[1]]))[:, -1]


def check_padding_mask(padding_mask, token_ids):
    """Raise a `ValueError` unless `padding_mask` has the `(B, T)` shape of `token_ids`."""
    if tuple(padding_mask.shape) != tuple(token_ids.shape):
        raise ValueError(
            f"`padding_mask` must have the shape of the token ids, {tuple(token_ids.shape)}, "
            f"got shape {tuple(padding_mask.shape)}."
        )


def seed_generator(seed=None):
    """A `keras.random.SeedGenerator` for `seed` (an integer >= 0, or None for a random one).

    Keras' PyTorch backend seeds the n-th draw with ``seed + n``, so seeds 3 and 4
    would draw the same tokens, one step apart. The seed is hashed first
    (`numpy.random.SeedSequence`), which keeps neighbouring seeds unrelated on
    every backend.

    Example:

    >>> from keras import ops
    >>> from keras_tx.sampling import sample_next_token
    >>> logits = ops.zeros((1, 1000))
    >>> def draws(seed):
    ...     generator = seed_generator(seed)
    ...     return [int(ops.convert_to_numpy(sample_next_token(logits, seed=generator))[0]) for _ in range(3)]
    >>> draws(3) == draws(3), draws(3)[1:] == draws(4)[:2]
    (True, False)
    """
    if seed is not None:
        if not is_number(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"`seed` must be None or an integer >= 0, got seed={seed!r}.")
        seed = int(np.random.SeedSequence(int(seed)).generate_state(1)[0] >> 1)  # < 2**31: any backend's seed dtype
    return keras.random.SeedGenerator(seed)


def _check_lengths(prompt_ids, max_new_tokens, max_length):
    """Raise unless the prompts and `max_new_tokens` fit `max_length`; returns `max_new_tokens` as an int."""
    if not is_number(max_new_tokens, numbers.Integral) or max_new_tokens < 0:
        raise ValueError(f"`max_new_tokens` must be an integer >= 0, got max_new_tokens={max_new_tokens!r}.")
    if prompt_ids.ndim != 2 or 0 in prompt_ids.shape:
        raise ValueError(f"`prompt_ids` must have shape (batch >= 1, length >= 1), got shape {prompt_ids.shape}.")
    if prompt_ids.shape[1] + max_new_tokens > max_length:
        raise ValueError(
            f"The prompt ({prompt_ids.shape[1]} tokens) plus `max_new_tokens`={max_new_tokens} "
            f"exceeds `max_length`={max_length}."
        )
    return int(max_new_tokens)


def cache_length(length, max_length, shortest=16):
    """The slots of a cache for `length` tokens: the next power of two, from `shortest` up to `max_length`.

    >>> cache_length(40, max_length=1024), cache_length(5, max_length=1024), cache_length(600, max_length=1024)
    (64, 16, 1024)
    """
    return min(max_length, max(shortest, 1 << (length - 1).bit_length()))


def _slots_mask(padding_mask, prompt_ids, slots):
    """The prompts' `padding_mask`, checked, extended over the cache's `slots`: `(B, slots)`."""
    padding_mask = np.asarray(ops.convert_to_numpy(padding_mask)).astype(bool)
    check_padding_mask(padding_mask, prompt_ids)
    if (padding_mask[:, :-1] > padding_mask[:, 1:]).any():
        raise ValueError("Prompts must be padded on the left: in `padding_mask`, no False may follow a True.")
    if not padding_mask[:, -1].all():
        raise ValueError("`padding_mask` must mark the last token of every prompt as real: each prompt needs a token.")
    generated = np.ones((len(padding_mask), slots - padding_mask.shape[1]), bool)
    return np.concatenate([padding_mask, generated], axis=1)


def _torch_decoding(model):
    """`keras_tx.torch_decoding`'s step for `model` on PyTorch in float32 (see there why), else None."""
    if keras.backend.backend() != "torch" or model.compute_dtype != "float32":
        return None
    from keras_tx.torch_decoding import TorchDecoding

    return TorchDecoding(model)


def _cached_sampler(model, batch_size, length, greedy, top_k, top_p):
    """The compiled step and sampling of `model` for these sizes and settings, made once and reused.

    The samplers of one batch size and cache length share one `CachedDecoder`: one set of caches.
    """
    if greedy:
        top_k = top_p = None  # greedy decoding filters nothing
    # Kept out of Keras' layer tracking: they wrap the model, they are not part of it.
    decoders = model.__dict__.setdefault("_cached_decoders", {})
    samplers = model.__dict__.setdefault("_cached_samplers", {})
    if (batch_size, length) not in decoders:
        decoders[batch_size, length] = CachedDecoder(model, batch_size, length)
    key = (batch_size, length, greedy, top_k, top_p)
    if key not in samplers:
        samplers[key] = CachedSampler(decoders[batch_size, length], greedy, top_k, top_p)
    return samplers[key]


class CachedDecoder(keras.Model):
    """One decoding step of `model` (a `GPT`) for a batch of `batch_size` sequences.

    The caches have `length` slots (default: the model's `max_length`): room
    for that many tokens, prompt included.

    Example:

    >>> import numpy as np
    >>> from keras_tx import GPT
    >>> gpt = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
    >>> decoder = CachedDecoder(gpt, batch_size=1, length=8)
    >>> decoder.step(np.array([[3, 1, 4]]), cache_index=0).shape  # the prompt
    (1, 50)
    >>> decoder.step(np.array([[1]]), cache_index=3).shape        # one new token
    (1, 50)
    """

    def __init__(self, model, batch_size, length=None, **kwargs):
        super().__init__(**kwargs)
        length = model.max_length if length is None else length
        check_positive_integers(batch_size=batch_size, length=length)
        if length > model.max_length:
            raise ValueError(f"`length` must be at most the model's max_length={model.max_length}, got {length}.")
        self.model = model  # tracked, so that the compiled step reads the model's current weights
        self.batch_size = batch_size
        self.length = length
        self.filled = 0  # slots 0 .. filled - 1 hold the sequence so far
        head_dim = model.embed_dim // model.num_heads
        shape = (batch_size, 2, length, model.num_heads, head_dim)
        self.caches = [
            self.add_weight(shape=shape, initializer="zeros", trainable=False, dtype=model.compute_dtype, name=f"cache_{i}")
            for i in range(model.num_layers)
        ]
        if not model.built:
            model.build((batch_size, None))
        self.built = True  # all the state there is: the caches above and the model's weights
        self._torch_step = _torch_decoding(model)

    def call(self, inputs):
        if not isinstance(inputs, dict):
            raise TypeError("A CachedDecoder runs one step at a time: call `decoder.step(token_ids, cache_index)`.")
        logits, caches = self.model.decode(
            inputs["token_ids"],
            [cache.value for cache in self.caches],
            inputs["cache_index"][0],
            inputs.get("padding_mask"),
        )
        for cache, updated in zip(self.caches, caches):
            cache.assign(updated)
        return logits

    def step(self, token_ids, cache_index, padding_mask=None):
        """Next-token logits `(B, vocab_size)` after `token_ids`, which start at
        position `cache_index` and are added to the cache.

        `cache_index` 0 starts a new sequence; otherwise it continues from a
        slot already written, usually the next one. `padding_mask`,
        `(B, length)`, marks the slots of real tokens; without it, all are real.
        """
        inputs = self.step_inputs(token_ids, cache_index, padding_mask)
        logits = self.eager_logits(inputs)
        return self.predict_on_batch(inputs) if logits is None else ops.convert_to_numpy(logits)

    def eager_logits(self, inputs):
        """The step of `inputs` run by `keras_tx.torch_decoding` where it applies (PyTorch, float32,
        no padding), writing the caches; None elsewhere: the step is then `predict_on_batch`'s."""
        if self._torch_step is None or "padding_mask" in inputs:
            return None
        return self._torch_step(inputs["token_ids"], [cache.value for cache in self.caches], inputs["cache_index"][0])

    def step_inputs(self, token_ids, cache_index, padding_mask=None):
        """The compiled step's inputs for the arguments of `step`, checked; the
        caches count as written up to the end of `token_ids` from then on."""
        token_ids = np.asarray(ops.convert_to_numpy(token_ids))
        self._check_step(token_ids, cache_index, padding_mask)
        inputs = {"token_ids": token_ids.astype("int32"), "cache_index": np.array([cache_index], "int32")}
        if padding_mask is not None:  # a separate compiled step: unpadded batches skip the mask
            inputs["padding_mask"] = np.asarray(padding_mask, bool)
        self.filled = int(cache_index) + token_ids.shape[1]
        return inputs

    def _check_step(self, token_ids, cache_index, padding_mask):
        """Raise a `ValueError` unless a step's arguments fit the caches and what they hold."""
        if not is_number(cache_index, numbers.Integral) or not 0 <= cache_index <= self.filled:
            raise ValueError(
                f"`cache_index` must be an integer from 0 (a new sequence) to {self.filled} "
                f"(the slots written so far), got cache_index={cache_index!r}."
            )
        validate_token_ids(token_ids, self.model.vocab_size, self.model.max_length)
        batch, length = token_ids.shape
        if batch != self.batch_size or length == 0 or cache_index + length > self.length:
            raise ValueError(
                f"`token_ids` of shape {token_ids.shape} at `cache_index`={cache_index} do not fit the "
                f"decoder's caches: batch_size={self.batch_size}, length={self.length} slots, at least one token."
            )
        if padding_mask is not None and np.shape(padding_mask) != (self.batch_size, self.length):
            raise ValueError(
                f"`padding_mask` must have shape (batch_size, length) = {(self.batch_size, self.length)}, "
                f"got shape {np.shape(padding_mask)}."
            )


class CachedSampler(keras.Model):
    """A `CachedDecoder`'s step and the choice of the next token, compiled together.

    The logits never leave the device: only the chosen token ids come back,
    and on JAX and TensorFlow the sampling runs inside the step's compiled
    program rather than op by op. Greedy decoding, `top_k` and `top_p` shape
    that program, so each combination is a sampler of its own (the samplers
    of one decoder share its caches); the temperature is an input of the
    step, so a new one needs no new compilation.

    Example:

    >>> import numpy as np
    >>> from keras_tx import GPT
    >>> gpt = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
    >>> sampler = CachedSampler(CachedDecoder(gpt, batch_size=2, length=8), top_k=10)
    >>> sampler.reseed(7)
    >>> first = sampler.next_tokens(np.array([[3, 1, 4], [1, 5, 9]]), cache_index=0, temperature=0.8)
    >>> first.shape, first.dtype
    ((2,), dtype('int32'))
    >>> sampler.next_tokens(first[:, None], cache_index=3, temperature=1.2).shape
    (2,)
    """

    def __init__(self, decoder, greedy=False, top_k=None, top_p=None, **kwargs):
        super().__init__(**kwargs)
        self.decoder = decoder  # tracked: its caches and its model's weights are this step's state
        _, self.top_k, self.top_p = validate_sampling(1.0, top_k, top_p)
        self.greedy = greedy
        self.draws = seed_generator()
        self.built = True

    def call(self, inputs):
        return self._choose(self.decoder(inputs), inputs.get("temperature"))

    def _choose(self, logits, temperature):
        if self.greedy:
            return sample_next_token(logits, temperature=0)
        # Divided here, by an input, rather than by a constant inside `sample_next_token`.
        return sample_next_token(logits / temperature, 1.0, self.top_k, self.top_p, seed=self.draws)

    def reseed(self, seed=None):
        """Start the draws afresh from `seed` (an integer >= 0; None: a random one)."""
        self.draws.state.assign(seed_generator(seed).state.value)

    def next_tokens(self, token_ids, cache_index, padding_mask=None, temperature=1.0):
        """`(B,)` int32: the tokens chosen after `token_ids`; arguments as in `CachedDecoder.step`.

        `temperature` must be above 0; a greedy sampler ignores it.
        """
        temperature, _, _ = validate_sampling(temperature)
        if temperature == 0 and not self.greedy:
            raise ValueError("This sampler samples: `temperature` must be above 0 (greedy is `greedy=True`).")
        inputs = self.decoder.step_inputs(token_ids, cache_index, padding_mask)
        logits = self.decoder.eager_logits(inputs)
        if logits is not None:
            return ops.convert_to_numpy(self._choose(logits, temperature))
        if not self.greedy:
            inputs["temperature"] = np.array([temperature], "float32")
        return self.predict_on_batch(inputs)
