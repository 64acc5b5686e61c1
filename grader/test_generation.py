"""Grading of exercises/generation.py (20 points): the key/value cache and generation with it.

The student's own GPT (exercise 4) is built with the reference's weights; its cached path must
give the logits of a full pass, one token at a time, and its greedy generation the reference's
tokens, with and without the cache. Greedy tokens are compared only once the GPT's full pass
gives the reference's logits: a token is an argmax, and a wrong GPT's argmax can match by chance.
"""

import time

import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, is_close, tensor, to_numpy
from grader.feedback import Feedback
from grader.layout import assign_weights, pack_weights, random_weights, unpack_weights
from grader.reference import FIXED_SEED, GPT_LENGTH, GPT_SIZES, seed_keras
from grader.test_model import gpt_differs

SIZES = GPT_SIZES
"""The model checks' GPT: batch 2, heads 3, head size 4, 16 positions; every size distinct."""
BATCH, PROMPT, STEPS = 2, 5, 3
CACHE_SHAPE = (BATCH, SIZES["num_heads"], SIZES["max_length"], SIZES["embed_dim"] // SIZES["num_heads"])
NEW_TOKENS = 4
assert PROMPT + STEPS == PROMPT + NEW_TOKENS - 1 == GPT_LENGTH  # the full passes have the model checks' shape
MISTAKES = {
    "never_read": "your cached attention does not read the cache: it attends only to the new token's own key and "
                  "value. Attend to all the keys and values that cache.update returns",
    "written_at_zero": "your cache writes every step's keys and values at slot 0: write them at slot cache.length "
                       "(ops.slice_update(self.keys, (0, 0, self.length, 0), key))",
    "positions_from_zero": "cached_logits gives the new tokens the position embeddings of positions 0, 1, ...: "
                           "a new token sits at position caches[0].length and after",
}


def instructor():
    from grader.instructor import generation

    return generation


def built_gpt(module, inputs):
    model = module.GPT(**SIZES)
    model(tensor(inputs["token_ids"]))  # built on a shape the checks run anyway: nothing new to compile on JAX
    assign_weights(model, "GPT", unpack_weights(inputs))
    return model


def draw_gpt(rng, module, length):
    model = module.GPT(**SIZES)
    token_ids = rng.integers(0, SIZES["vocab_size"], (BATCH, length)).astype("int32")
    model(tensor(token_ids))
    return {"token_ids": token_ids, **pack_weights(random_weights(model, "GPT", rng))}


def run_steps(module, inputs):
    model = built_gpt(module, inputs)
    token_ids = inputs["token_ids"]
    found = instructor().fingerprints(module, model, tensor(token_ids), PROMPT)
    return {"logits": to_numpy(model(tensor(token_ids)), "GPT"), **{f"mistake:{name}": logits
                                                                    for name, logits in found.items()}}


def check_caches(caches, fed, what):
    """The caches hold `fed` positions in slots allocated once."""
    if len(caches) != SIZES["num_layers"]:
        raise GradingFailure(f"make_caches gave {len(caches)} caches for a GPT of {SIZES['num_layers']} blocks")
    for cache in caches:
        shape = tuple(to_numpy(cache.keys, "KVCache.keys").shape)
        if shape != CACHE_SHAPE:
            grown = len(shape) == 4 and shape[2] > SIZES["max_length"]
            raise GradingFailure(
                f"after {what} a cache's keys have shape {shape}, expected {CACHE_SHAPE} (batch, heads, max_length, "
                "head size)" + (": your cache grows without bound. Write into the slots allocated once "
                                "(ops.slice_update), do not concatenate" if grown else ""))
        if int(cache.length) != fed:
            raise GradingFailure(f"after {what} a cache's length is {int(cache.length)}, expected {fed}: "
                                 "the number of positions fed through the model")


@pytest.mark.points(4)
def test_cache_update_writes_at_its_length(student, rngs):
    for rng in rngs:
        cache = student.KVCache(*CACHE_SHAPE)
        written = []
        for length in (3, 1, 2):
            key, value = (rng.normal(size=(*CACHE_SHAPE[:2], length, CACHE_SHAPE[3])).astype("float32") for _ in "kv")
            keys, values = (to_numpy(array, "KVCache.update") for array in cache.update(tensor(key), tensor(value)))
            start = sum(part[0].shape[2] for part in written)
            written.append((key, value))
            expected = np.concatenate([part[0] for part in written], axis=2)
            stored = to_numpy(cache.keys, "KVCache.keys")
            if stored.shape != CACHE_SHAPE:
                raise GradingFailure(
                    f"after update, cache.keys has shape {stored.shape}, expected {CACHE_SHAPE}"
                    + (": your cache grows without bound. Write into the slots allocated once (ops.slice_update), "
                       "do not concatenate" if stored.ndim == 4 and stored.shape[2] > CACHE_SHAPE[2] else ""))
            if keys.shape == key.shape and start:
                raise GradingFailure("update returns only the new keys and values: the cache is never read. "
                                     "Return all the keys and values so far, self.keys[:, :, :self.length]")
            if keys.shape != expected.shape or not is_close(keys, expected) or not is_close(
                    values, np.concatenate([part[1] for part in written], axis=2)):
                slots = [slot for slot in range(CACHE_SHAPE[2] - length + 1)
                         if is_close(stored[:, :, slot : slot + length], key)]
                where = f"at slot {slots[0]}" if slots else "nowhere in cache.keys"
                raise GradingFailure(
                    f"after updates of {[part[0].shape[2] for part in written]} tokens, the newest keys are written "
                    f"{where}, expected at slot {start} (the cache's length before the update); update must "
                    "return the keys and values of all positions so far, in order")
            if int(cache.length) != start + length:
                raise GradingFailure(f"after updates of {[part[0].shape[2] for part in written]} tokens, cache.length "
                                     f"is {int(cache.length)}, expected {start + length}")


@pytest.mark.points(6)
def test_cached_logits_match_a_full_pass(student, reference):
    for inputs, expected in reference("steps", lambda rng, module: draw_gpt(rng, module, PROMPT + STEPS), run_steps):
        model = built_gpt(student, inputs)
        caches = student.make_caches(model, BATCH)
        token_ids = inputs["token_ids"]
        logits = [to_numpy(student.cached_logits(model, tensor(token_ids[:, :PROMPT]), caches), "cached_logits")]
        for position in range(PROMPT, PROMPT + STEPS):
            logits.append(to_numpy(student.cached_logits(model, tensor(token_ids[:, position : position + 1]), caches),
                                   "cached_logits"))
        logits = np.concatenate(logits, axis=1)
        check_close(logits, expected["logits"], f"cached_logits on a prompt of {PROMPT} then {STEPS} single tokens",
                    hint=lambda: steps_hint(logits, expected))
        check_caches(caches, PROMPT + STEPS, f"a prompt of {PROMPT} and {STEPS} single tokens")


def steps_hint(logits, expected):
    if is_close(logits[:, :PROMPT], expected["logits"][:, :PROMPT]):
        for name, message in MISTAKES.items():
            if is_close(logits, expected[f"mistake:{name}"]):
                return message
        position = PROMPT + int(np.argmax([not is_close(logits[:, t], expected["logits"][:, t])
                                           for t in range(PROMPT, PROMPT + STEPS)]))
        return (f"cached_logits matches a full pass on the prompt but not on the token at position {position}, "
                "fed alone: check the cache (what update writes and returns) and the mask's offset")
    return ("cached_logits on the prompt, with empty caches, differs from a full pass of your GPT: "
            "the cached path must compute what GPT.call computes")


def run_generate(module, inputs):
    model = built_gpt(module, inputs)
    caches = module.make_caches(model, BATCH)
    tokens = to_numpy(module.generate(model, tensor(inputs["token_ids"]), NEW_TOKENS, caches=caches), "generate")
    return {"tokens": tokens.astype("float32"), "keys": last_keys(caches), "logits": full_pass(model, tokens)}


def full_pass(model, tokens):
    """The logits a full pass gives every position of a greedy sequence whose next token is known."""
    return to_numpy(model(tensor(tokens[:, :-1].astype("int32"))), "GPT")


def last_keys(caches):
    """The keys the last block's cache holds after a generation: those of every position fed."""
    return to_numpy(caches[-1].keys, "KVCache.keys")[:, :, : PROMPT + NEW_TOKENS - 1]


@pytest.mark.points(6)
def test_greedy_generation_with_and_without_the_cache(student, reference):
    for inputs, expected in reference("generate", lambda rng, module: draw_gpt(rng, module, PROMPT), run_generate):
        model = built_gpt(student, inputs)
        check_close(full_pass(model, expected["tokens"]), expected["logits"],
                    "your GPT's full pass over the reference's greedy tokens", hint=lambda: Feedback(
                        cause="generation runs your GPT, and it computes other logits than the reference's",
                        fix="make exercise 4's GPT and test_cached_logits_match_a_full_pass pass first"))
        caches = student.make_caches(model, BATCH)
        try:
            cached = to_numpy(student.generate(model, tensor(inputs["token_ids"]), NEW_TOKENS, caches=caches),
                              "generate")
        except Exception:
            check_fed(caches)  # a cache overflowing its slots ends in an error: name why
            raise
        uncached = to_numpy(student.generate_uncached(model, tensor(inputs["token_ids"]), NEW_TOKENS),
                            "generate_uncached")
        for what, tokens in (("generate", cached), ("generate_uncached", uncached)):
            if tokens.shape != expected["tokens"].shape or not np.array_equal(tokens, expected["tokens"]):
                raise GradingFailure(
                    f"{what}(model, prompt, {NEW_TOKENS}) at temperature 0 gave {tokens.astype(int).tolist()}, "
                    f"expected the greedy tokens {expected['tokens'].astype(int).tolist()}")
        check_fed(caches)
        check_caches(caches, PROMPT + NEW_TOKENS - 1, "generate")
        check_close(last_keys(caches), expected["keys"], "the keys in the last block's cache after generate",
                    hint=lambda: "after generate, the last block's cache holds other keys than the reference's: "
                                 "the cached path computes or stores them otherwise (see the check of cached_logits)")


def check_fed(caches):
    fed = int(caches[0].length)
    if fed > PROMPT + NEW_TOKENS - 1:
        raise GradingFailure(
            f"generate fed {fed} positions into the cache for a prompt of {PROMPT} and {NEW_TOKENS} new tokens, "
            f"expected {PROMPT + NEW_TOKENS - 1}: it feeds tokens more than once (the whole sequence at each "
            "step?), so the cache grows without bound. Feed the prompt once, then each new token alone")
    if fed < PROMPT + NEW_TOKENS - 1:
        raise GradingFailure(
            f"generate fed only {fed} positions into the caches it was given, expected {PROMPT + NEW_TOKENS - 1}: "
            "use the `caches` argument when it is given, and feed the prompt once, then each new token but the last")


SPEED_TOKENS = NEW_TOKENS
"""The shapes the greedy check compiled already: JAX compiles every new shape, which would dwarf the step."""


@pytest.mark.points(4)
def test_cached_and_uncached_sampling_agree(student, request, students, references):
    """Sampled with one seed, both loops draw the same tokens; their speeds are printed, never graded.

    Drawn from a GPT of model.py that computes other logits than the reference's, the two loops can part
    on a draw at a boundary: then model.py is named as the cause."""
    seed_keras(FIXED_SEED, "cached and uncached")  # the same initial weights in every run
    model = student.GPT(**SIZES)
    prompt = tensor(np.arange(BATCH * PROMPT, dtype="int32").reshape(BATCH, PROMPT) % SIZES["vocab_size"])
    seconds, tokens = {}, {}
    for name in ("generate", "generate_uncached"):
        start = time.perf_counter()
        tokens[name] = to_numpy(getattr(student, name)(model, prompt, SPEED_TOKENS, temperature=1.0, seed=7), name)
        seconds[name] = time.perf_counter() - start
    if request is not None:  # None when called outside pytest
        plugins = request.config.pluginmanager
        with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
            plugins.get_plugin("terminalreporter").write_line(
                "\n" + ", ".join(f"{name}: {SPEED_TOKENS / seconds[name]:.0f} tokens/s" for name in seconds)
                + f" ({SPEED_TOKENS} tokens, your GPT)")
    if not np.array_equal(tokens["generate"], tokens["generate_uncached"]):
        cached, uncached = (tokens[name][:, PROMPT:].astype(int) for name in ("generate", "generate_uncached"))
        row = int(np.flatnonzero((cached != uncached).any(axis=-1))[0]) if cached.shape == uncached.shape else 0
        drawn = (f"sampled with temperature 1 and seed 7, generate and generate_uncached drew different tokens "
                 f"(sequence {row}: {cached[row].tolist()} and {uncached[row].tolist()})")
        model_hint = gpt_differs(references, students["model"])
        if model_hint:
            raise GradingFailure(Feedback(drawn, model_hint.cause, model_hint.fix))
        raise GradingFailure(
            f"{drawn}: either the two loops compute other logits (the checks above say where), or they do not both "
            "make one keras.random.SeedGenerator(seed) and pass it to sample_next_token at every step")
