"""Exercise 7: generating text, and the key/value cache that makes it fast.

Lesson
======

1. Generating, the slow way
---------------------------
To continue a prompt, run the whole sequence through the GPT, sample the next token from the
logits of the last position (exercise 6), append it, and run the whole, longer sequence again.
``generate_uncached`` does exactly that. It is correct and wasteful: the ``n``-th step recomputes
the keys, values and outputs of all ``n`` earlier positions, although none of them has changed.

Neither loop of this exercise crops the sequence to the model's last ``max_length`` tokens (a
sliding window, as nanoGPT's ``generate`` does): the whole sequence goes through the model, so
it must fit. The last token sampled is never fed back, so the longest sequence the model reads
is ``prompt length + max_new_tokens - 1`` tokens, and that must be at most ``max_length``, the
rows of the position table. Beyond it there is no position embedding to look up: under
PyTorch the lookup raises an ``IndexError``, under JAX it silently returns NaNs. Checking
the lengths is the caller's job; the grader's prompts and lengths always fit.

2. Why the past does not change
-------------------------------
The causal mask stops a position from seeing later ones, so the key and value that a block
computes at position ``t`` depend only on the tokens up to ``t``: appending a token changes
nothing before it. Each attention layer can therefore keep the keys and values it has computed
in a **key/value cache**, and a step only has to push the *new* token through the model: its
query attends to the cached keys and values plus its own. The prompt goes through once, as a
whole; then every new token goes through once, alone. ``N`` new tokens cost ``N`` one-token
passes instead of ``N`` ever longer ones.

3. The cache
------------
``KVCache(batch_size, num_heads, max_length, head_dim)`` holds two tensors, ``keys`` and
``values``, each of shape ``(batch_size, num_heads, max_length, head_dim)``, allocated once with
``ops.zeros``, and ``length``, the number of positions written so far (0 at first).
``update(key, value)`` receives the ``(B, H, T, D)`` keys and values of ``T`` new tokens, writes
them into the slots ``length .. length + T - 1`` with ``ops.slice_update(self.keys, (0, 0,
self.length, 0), key)``, advances ``length`` by ``T``, and returns the keys and values of *all*
positions so far, ``self.keys[:, :, : self.length]`` and the same for values: the attention
reads them from the cache. Three classic bugs:

* writing at the wrong index (always at 0, or one slot late): the cache then holds the keys at
  other positions than their tokens;
* a cache that is written and never read: attention that uses only the new token's own key and
  value sees nothing of the past;
* a cache that grows without bound: concatenating onto the tensors at every step, instead of
  writing into the slots allocated once, makes their shape grow with every call. The shapes of
  ``keys`` and ``values`` never change.

``make_caches(model, batch_size)`` returns a list with one fresh ``KVCache`` per block of the
GPT of exercise 4: ``max_length`` and the width are the ``input_dim`` and ``output_dim`` of its
position embedding, and each block's attention knows its ``num_heads``.

4. The cached path
------------------
The cached path reuses the sublayers of your model as they are; only the dataflow changes:

* ``cached_attention(attention, x, cache)``: ``x`` is ``(B, T, C)``, the new tokens at positions
  ``cache.length .. cache.length + T - 1``. Project and split into heads as in
  ``MultiHeadSelfAttention.call``, pass the new key and value through ``cache.update``, and attend
  from the new queries to *all* the returned keys. The mask is causal with an offset: new token
  ``i`` sits at position ``start + i`` and may see the keys ``0 .. start + i``, so the mask is
  ``key_positions <= query_positions`` with ``ops.arange(start + T)`` and
  ``ops.arange(start, start + T)``;
* ``cached_block(block, x, cache)``: the pre-LN block of exercise 4 with ``cached_attention``;
* ``cached_logits(model, token_ids, caches)``: token ids ``(B, T)`` at positions ``start ..
  start + T - 1``, where ``start`` is ``caches[0].length``: the token embedding plus the
  position embedding *of those positions* (not ``0 .. T - 1``), every block with its own cache,
  the final norm and the head. It returns the ``(B, T, vocab_size)`` logits.

5. Generating with the cache
----------------------------
``generate(model, prompt_ids, max_new_tokens, ...)`` makes the caches (unless it is given
``caches``), feeds the prompt once, samples a token from the last logits, and then feeds each
new token once, alone. The last token sampled is never fed: nothing comes after it. So after
``max_new_tokens`` tokens the caches hold ``prompt length + max_new_tokens - 1`` positions,
and the model was called ``max_new_tokens`` times. With ``temperature=0`` (greedy) the cached
and the uncached loops choose the same tokens: the grader checks both against the reference's,
and the cache's shape and length after generating. A ``seed`` (an integer) becomes one
``keras.random.SeedGenerator``, used at every step, so that the steps draw different numbers.

The grader also times both loops on your own model and prints the tokens per second. On a
CPU the cache wins more the longer the text; on an accelerator, a model this small spends most
of a step launching kernels, whatever the length.
"""

import keras
from keras import ops

from .attention import merge_heads, scaled_dot_product_attention, split_heads
from .model import GPT  # noqa: F401  (the grader builds your GPT through this module)
from .sampling import sample_next_token


class KVCache:
    """The keys and values one attention layer has computed, for positions ``0 .. length - 1``.

    Lesson: section 3.

    Example:
        >>> cache = KVCache(batch_size=1, num_heads=2, max_length=8, head_dim=4)
        >>> keys, values = cache.update(ops.ones((1, 2, 3, 4)), ops.ones((1, 2, 3, 4)))
        >>> tuple(keys.shape), cache.length, tuple(cache.keys.shape)
        ((1, 2, 3, 4), 3, (1, 2, 8, 4))
    """

    def __init__(self, batch_size, num_heads, max_length, head_dim):
        raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")

    def update(self, key, value):
        """Write ``(B, H, T, D)`` keys and values at ``length``; return all keys and values so far."""
        raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def make_caches(model, batch_size):
    """One empty `KVCache` per block of `model` (your GPT of exercise 4).

    Lesson: section 3.
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def cached_attention(attention, x, cache):
    """`attention` (your MultiHeadSelfAttention) on new tokens `x`, reading and writing `cache`.

    Lesson: section 4.
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def cached_block(block, x, cache):
    """`block` (your TransformerBlock) on new tokens `x`, with its attention's `cache`.

    Lesson: section 4.
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def cached_logits(model, token_ids, caches):
    """The ``(B, T, vocab_size)`` logits of new tokens ``(B, T)``, which follow those in `caches`.

    Lesson: section 4. Call the model's layers rather than reading their weights: `model` may not
    be built yet, and a layer makes its weights on its first call.

    Example:
        >>> model = GPT(vocab_size=10, max_length=8, embed_dim=16, num_heads=2, num_layers=2, ff_dim=32)
        >>> caches = make_caches(model, batch_size=1)
        >>> tuple(cached_logits(model, ops.ones((1, 3), "int32"), caches).shape), caches[0].length
        ((1, 3, 10), 3)
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def generate(model, prompt_ids, max_new_tokens, temperature=0.0, top_k=None, top_p=None, seed=None, caches=None):
    """Extend each prompt by `max_new_tokens` tokens, feeding every token through the model once.

    Lesson: section 5.

    Args:
        model: your GPT.
        prompt_ids: ``(B, P)`` int token ids.
        max_new_tokens: how many tokens to add.
        temperature, top_k, top_p: the sampling settings of exercise 6 (default: greedy).
        seed: None or an integer, for reproducible sampling.
        caches: None (make fresh ones), or the caches of `make_caches(model, B)` to fill.

    Returns:
        The ``(B, P + max_new_tokens)`` int32 token ids, prompt first.

    Example:
        >>> model = GPT(vocab_size=10, max_length=8, embed_dim=16, num_heads=2, num_layers=2, ff_dim=32)
        >>> tuple(generate(model, ops.ones((2, 3), "int32"), max_new_tokens=4).shape)
        (2, 7)
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def generate_uncached(model, prompt_ids, max_new_tokens, temperature=0.0, top_k=None, top_p=None, seed=None):
    """`generate` without a cache: the whole sequence through the model at every step.

    Lesson: section 1. The arguments and the result are `generate`'s.

    The sequence is never cropped: at the last step the model reads all
    ``P + max_new_tokens - 1`` tokens (the last one sampled is not fed back), which must be at
    most the model's ``max_length``; a longer one has no position embedding (PyTorch raises an
    ``IndexError``, JAX silently returns NaNs). Neither this function nor `generate` checks it.
    The grader stays within ``max_length``: a prompt of 5 tokens and 4 new ones, with
    ``max_length=16``.

    Example:
        >>> model = GPT(vocab_size=10, max_length=8, embed_dim=16, num_heads=2, num_layers=2, ff_dim=32)
        >>> tuple(generate_uncached(model, ops.ones((1, 3), "int32"), max_new_tokens=6).shape)  # reads 3 + 6 - 1 = 8
        (1, 9)
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")
