"""What the reference's cached path computes under the key/value cache's classic mistakes.

Each function runs the reference module's cached path, one prompt then one token at a time,
with one thing done wrong; the grader records the logits as fingerprints, so that a student's
logits that match one of them name the mistake, in the release too.
"""

import warnings

from keras import ops

from grader.checks import tensor
from grader.instructor.algorithms import causal_mask


class Counter:
    """A cache that only counts the positions fed."""

    length = 0


def attending_to_the_new_tokens_only(model, new_ids, caches):
    """The cached path of a cache that is written but never read: each call sees only its own tokens."""
    start, length = caches[0].length, new_ids.shape[1]
    for cache in caches:
        cache.length += length
    positions = ops.arange(start, start + length)
    x = model.embedding.token_embedding(new_ids) + model.embedding.position_embedding(positions)
    for block in model.blocks:
        x = block(x, tensor(causal_mask(length)))
    return model.lm_head(model.final_norm(x))


def stepwise_logits(module, model, token_ids, prompt_length, caches, step=None):
    """The logits of `token_ids`: the prompt in one call, then one token per call (`step` or the module's)."""
    step = step or module.cached_logits
    logits = [step(model, token_ids[:, :prompt_length], caches)]
    logits += [step(model, token_ids[:, t : t + 1], caches) for t in range(prompt_length, token_ids.shape[1])]
    return ops.convert_to_numpy(ops.concatenate(logits, axis=1))


def fingerprints(module, model, token_ids, prompt_length):
    """``{mistake: logits}`` for each classic mistake of the cached path."""
    batch = token_ids.shape[0]

    class WrittenAtZero(module.KVCache):
        def update(self, key, value):
            length = self.length
            self.length = 0
            super().update(key, value)
            self.length = length + ops.shape(key)[2]
            return self.keys[:, :, : self.length], self.values[:, :, : self.length]

    def caches(cls):
        return [cls(*tuple(cache.keys.shape)) for cache in module.make_caches(model, batch)]

    def positions_from_zero(model, new_ids, caches):
        x = model.embedding(new_ids)
        for block, cache in zip(model.blocks, caches):
            x = module.cached_block(block, x, cache)
        return model.lm_head(model.final_norm(x))

    with warnings.catch_warnings():  # one new token attending to itself alone: Keras warns of a softmax over 1
        warnings.filterwarnings("ignore", message="You are using a softmax over axis")
        never_read = stepwise_logits(module, model, token_ids, prompt_length, [Counter() for _ in model.blocks],
                                     attending_to_the_new_tokens_only)
    return {
        "never_read": never_read,
        "written_at_zero": stepwise_logits(module, model, token_ids, prompt_length, caches(WrittenAtZero)),
        "positions_from_zero": stepwise_logits(module, model, token_ids, prompt_length,
                                               module.make_caches(model, batch), positions_from_zero),
    }
