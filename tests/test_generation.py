import keras
import numpy as np
import pytest
from keras import ops

from keras_tx import GPT, sample_next_token, top_k_filter, top_p_filter
from keras_tx.generation import CachedDecoder, CachedSampler


@pytest.fixture
def model():
    return GPT(vocab_size=31, max_length=32, embed_dim=32, num_heads=4, num_layers=2)


@pytest.fixture
def prompt(rng):
    return rng.integers(0, 31, size=(2, 5)).astype("int32")


def test_cached_greedy_generation_equals_recomputation(model, prompt):
    cached = model.generate(prompt, max_new_tokens=8, temperature=0)
    recomputed = model.generate(prompt, max_new_tokens=8, temperature=0, use_cache=False)
    np.testing.assert_array_equal(cached, recomputed)
    np.testing.assert_array_equal(cached[:, :5], prompt)
    assert cached.shape == (2, 13) and cached.dtype == np.int32


@pytest.mark.parametrize("masked", [False, True], ids=["no padding mask", "padding mask of all True"])
def test_cached_logits_equal_the_full_forward_pass(model, prompt, masked):
    """Each compiled cached step gives the logits of a pass over the whole sequence."""
    sequence = model.generate(prompt, max_new_tokens=6, temperature=0)
    full = ops.convert_to_numpy(model(sequence))
    decoder = CachedDecoder(model, batch_size=2, length=16)
    mask = {"padding_mask": np.ones((2, 16), bool)} if masked else {}
    logits = decoder.step(sequence[:, :5], cache_index=0, **mask)
    np.testing.assert_allclose(logits, full[:, 4], rtol=1e-4, atol=1e-4)
    for position in range(5, 11):
        logits = decoder.step(sequence[:, position : position + 1], cache_index=position, **mask)
        np.testing.assert_allclose(logits, full[:, position], rtol=1e-4, atol=1e-4)


def test_the_cache_holds_the_generation_not_the_whole_context(model, prompt, monkeypatch):
    """Slots for prompt and new tokens, rounded up to a power of two: one decoder per size, reused."""
    lengths = []
    make = CachedDecoder.__init__
    monkeypatch.setattr(CachedDecoder, "__init__", lambda self, *a, **kw: make(self, *a, **kw) or lengths.append(self.length))
    short = model.generate(prompt, max_new_tokens=8, temperature=0)  # 13 tokens: 16 slots
    model.generate(prompt, max_new_tokens=11, temperature=0)  # 16 tokens: the same decoder
    longest = model.generate(prompt, max_new_tokens=27, temperature=0)  # 32 tokens: all of max_length
    assert lengths == [16, 32]
    np.testing.assert_array_equal(short, longest[:, :13])  # greedy: the two caches agree


def test_a_decoder_refuses_steps_that_do_not_fit_its_caches(model):
    decoder = CachedDecoder(model, batch_size=1, length=8)
    with pytest.raises(ValueError, match=r"from 0 \(a new sequence\) to 0"):
        decoder.step(np.zeros((1, 1), "int32"), cache_index=3)  # a fresh cache holds nothing to continue
    decoder.step(np.zeros((1, 6), "int32"), cache_index=0)
    for cache_index in (-2, 7, 2.0):  # before the start, past the written slots, not an integer
        with pytest.raises(ValueError, match="`cache_index` must be an integer from 0"):
            decoder.step(np.zeros((1, 1), "int32"), cache_index=cache_index)
    with pytest.raises(ValueError, match="length=8 slots"):
        decoder.step(np.zeros((1, 3), "int32"), cache_index=6)
    with pytest.raises(ValueError, match="length=8 slots, at least one token"):
        decoder.step(np.zeros((1, 0), "int32"), cache_index=6)
    with pytest.raises(ValueError, match="batch_size=1"):
        decoder.step(np.zeros((2, 1), "int32"), cache_index=6)
    with pytest.raises(ValueError, match="must be integers"):
        decoder.step(np.array([[1.9]]), cache_index=6)
    with pytest.raises(ValueError, match=r"in \[0, 31\)"):
        decoder.step(np.array([[31]]), cache_index=6)
    with pytest.raises(ValueError, match=r"`padding_mask` must have shape \(batch_size, length\) = \(1, 8\)"):
        decoder.step(np.zeros((1, 1), "int32"), cache_index=6, padding_mask=np.ones((1, 7), bool))
    with pytest.raises(TypeError, match="decoder.step"):
        decoder(np.zeros((1, 1), "int32"))
    with pytest.raises(ValueError, match="max_length=32"):
        CachedDecoder(model, batch_size=1, length=64)
    decoder.step(np.zeros((1, 1), "int32"), cache_index=6)  # the refused steps changed nothing
    decoder.step(np.zeros((1, 1), "int32"), cache_index=7)


def test_cache_feeds_each_token_through_the_model_once(model, prompt, monkeypatch):
    """O(N): with the cache, the prompt and then one token per step; without it, the whole prefix each step."""
    cached_lengths, full_lengths = [], []
    step_inputs, forward = CachedDecoder.step_inputs, GPT.predict_on_batch
    monkeypatch.setattr(CachedDecoder, "step_inputs",
                        lambda self, ids, *args, **kw: cached_lengths.append(ids.shape[1]) or step_inputs(self, ids, *args, **kw))
    monkeypatch.setattr(GPT, "predict_on_batch", lambda self, ids: full_lengths.append(ids.shape[1]) or forward(self, ids))
    model.generate(prompt, max_new_tokens=8, temperature=0)
    assert cached_lengths == [5] + [1] * 7
    model.generate(prompt, max_new_tokens=8, temperature=0, use_cache=False)
    assert full_lengths == list(range(5, 13))


def test_seed_makes_sampling_reproducible(model, prompt):
    first = model.generate(prompt, max_new_tokens=15, temperature=2.0, seed=7)
    again = model.generate(prompt, max_new_tokens=15, temperature=2.0, seed=7)
    other = model.generate(prompt, max_new_tokens=15, temperature=2.0, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("settings", [dict(temperature=1.5), dict(temperature=0.8, top_k=5), dict(top_p=0.8)])
def test_sampling_inside_the_compiled_step_draws_what_sampling_after_a_recomputation_draws(model, prompt, settings):
    """The cached path samples inside its compiled step: with the same seed, the same tokens."""
    cached = model.generate(prompt, max_new_tokens=10, seed=11, **settings)
    recomputed = model.generate(prompt, max_new_tokens=10, seed=11, use_cache=False, **settings)
    np.testing.assert_array_equal(cached, recomputed)
    greedy = model.generate(prompt, max_new_tokens=10, temperature=0)  # another setting, the same caches
    np.testing.assert_array_equal(greedy, model.generate(prompt, max_new_tokens=10, temperature=0, use_cache=False))


def test_a_new_temperature_reuses_the_compiled_sampler(model, prompt, monkeypatch):
    """The temperature is an input of the compiled step; greedy decoding and top-k shape it."""
    made = []
    make = CachedSampler.__init__
    monkeypatch.setattr(CachedSampler, "__init__", lambda self, *a, **kw: make(self, *a, **kw) or made.append(self))
    for temperature in (0.5, 0.7, 2.0):  # each one applied, none compiled anew
        cached = model.generate(prompt, max_new_tokens=4, temperature=temperature, seed=0)
        recomputed = model.generate(prompt, max_new_tokens=4, temperature=temperature, seed=0, use_cache=False)
        np.testing.assert_array_equal(cached, recomputed)
    assert len(made) == 1
    model.generate(prompt, max_new_tokens=4, temperature=0)
    model.generate(prompt, max_new_tokens=4, temperature=0.5, top_k=3)
    assert len(made) == 3
    with pytest.raises(ValueError, match="greedy=True"):
        made[0].next_tokens(prompt, cache_index=0, temperature=0)


def test_neighbouring_seeds_draw_unrelated_tokens(model, prompt):
    """Keras' PyTorch backend seeds the n-th draw with seed + n: seed 8 must not replay seed 7 one step later."""
    first, second = (model.generate(prompt, max_new_tokens=15, temperature=2.0, seed=seed)[:, 5:] for seed in (7, 8))
    assert (first[:, 1:] == second[:, :-1]).mean() < 0.5  # 1.0 when the streams are shifted copies


def test_generation_limits_and_arguments_are_checked(model, prompt):
    with pytest.raises(ValueError, match="max_length"):
        model.generate(prompt, max_new_tokens=28)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(prompt, max_new_tokens=2, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, max_new_tokens=2, top_p=1.5)
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, max_new_tokens=2, top_p=0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(prompt, max_new_tokens=2, top_k=0)
    with pytest.raises(ValueError, match="prompt_ids"):
        model.generate(np.zeros((2, 0), "int32"), max_new_tokens=2)
    for max_new_tokens in (-1, True, 2.0):
        with pytest.raises(ValueError, match="max_new_tokens"):
            model.generate(prompt, max_new_tokens=max_new_tokens)
    with pytest.raises(ValueError, match=r"batch >= 1"):
        model.generate(np.zeros((0, 3), "int32"), max_new_tokens=2)
    with pytest.raises(ValueError, match="seed"):
        model.generate(prompt, max_new_tokens=2, seed=-1)
    # NumPy scalars are numbers too.
    greedy = model.generate(prompt, max_new_tokens=np.int64(2), temperature=np.float32(0))
    np.testing.assert_array_equal(greedy, model.generate(prompt, max_new_tokens=2, temperature=0))
    assert model.generate(prompt, np.int32(2), temperature=np.float64(0.5), top_k=np.int64(3), top_p=np.float32(0.9),
                          seed=np.int64(1)).shape == (2, 7)
    with pytest.raises(ValueError, match=r"\[0, 31\)"):
        model.generate(prompt + 40, max_new_tokens=2)


# --- samplers on hand-built logits -------------------------------------------

PROBABILITIES = np.array([0.05, 0.5, 0.15, 0.3], "float32")


def draw(n=4000, **kwargs):
    logits = np.log(np.tile(PROBABILITIES, (n, 1)))
    tokens = ops.convert_to_numpy(sample_next_token(logits, seed=keras.random.SeedGenerator(3), **kwargs))
    return np.bincount(tokens, minlength=4) / n


def test_plain_sampling_follows_the_softmax():
    np.testing.assert_allclose(draw(), PROBABILITIES, atol=0.03)


def test_temperature_zero_is_greedy_and_low_temperature_sharpens():
    np.testing.assert_array_equal(draw(temperature=0), [0, 1, 0, 0])
    cold, hot = draw(temperature=0.5), draw(temperature=3.0)
    assert cold[1] > PROBABILITIES[1] + 0.1
    assert hot[1] < PROBABILITIES[1] - 0.1
    # T = 0.5 squares the probabilities (then renormalises).
    np.testing.assert_allclose(cold, PROBABILITIES**2 / (PROBABILITIES**2).sum(), atol=0.03)


def test_top_k_samples_only_the_k_most_likely():
    frequencies = draw(top_k=2)
    assert frequencies[0] == 0 and frequencies[2] == 0
    np.testing.assert_allclose(frequencies[[1, 3]], [0.5 / 0.8, 0.3 / 0.8], atol=0.03)
    filtered = ops.convert_to_numpy(top_k_filter(np.log(PROBABILITIES[None]), 10))
    np.testing.assert_allclose(filtered, np.log(PROBABILITIES[None]), rtol=1e-6)


@pytest.mark.parametrize(
    "top_p, kept",
    [(0.4, [1]), (0.7, [1, 3]), (0.85, [1, 3, 2]), (1.0, [0, 1, 2, 3])],
)
def test_top_p_keeps_the_smallest_set_reaching_p(top_p, kept):
    frequencies = draw(top_p=top_p)
    assert set(np.flatnonzero(frequencies)) == set(kept)
    np.testing.assert_allclose(
        frequencies[kept], PROBABILITIES[kept] / PROBABILITIES[kept].sum(), atol=0.03
    )
    weights = ops.convert_to_numpy(ops.softmax(top_p_filter(np.log(PROBABILITIES[None]), top_p)))[0]
    np.testing.assert_allclose(weights[kept], PROBABILITIES[kept] / PROBABILITIES[kept].sum(), rtol=1e-5)


def test_cached_generation_follows_the_weights_after_more_training(model, prompt, rng):
    model.generate(prompt, max_new_tokens=4, temperature=0)  # builds and compiles the cached step
    data = rng.integers(0, 31, size=(32, 12)).astype("int32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data[:, :-1], data[:, 1:], epochs=2, verbose=0)
    cached = model.generate(prompt, max_new_tokens=6, temperature=0)
    recomputed = model.generate(prompt, max_new_tokens=6, temperature=0, use_cache=False)
    np.testing.assert_array_equal(cached, recomputed)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the PyTorch backend's own decoding step")
@pytest.mark.parametrize("settings", [dict(), dict(positional="sinusoidal", tie_weights=False, activation="gelu_approximate")],
                         ids=["GPT-2's layout", "sine/cosine positions, untied head, tanh GELU"])
def test_the_torch_step_computes_gpt_decode(settings, prompt, rng, monkeypatch):
    """On PyTorch, `generate` runs `keras_tx.torch_decoding` instead of `predict_on_batch`: the same
    logits and caches as `GPT.decode`, for the prompt and for each new token, written in place."""
    model = GPT(vocab_size=31, max_length=32, embed_dim=32, num_heads=4, num_layers=2, **settings)
    model.build((2, None))
    for weight in model.weights:  # far from GPT-2's small initial weights, so that every term shows
        weight.assign(rng.normal(0, 0.3, weight.shape))
    torch_decoder, keras_decoder = CachedDecoder(model, 2, 16), CachedDecoder(model, 2, 16)
    keras_decoder._torch_step = None  # Keras' compiled path: `GPT.decode` through `predict_on_batch`
    sequence = model.generate(prompt, max_new_tokens=6, temperature=0, use_cache=False)
    for start, stop in [(0, 5), *((position, position + 1) for position in range(5, 11))]:
        np.testing.assert_allclose(torch_decoder.step(sequence[:, start:stop], start),
                                   keras_decoder.step(sequence[:, start:stop], start), rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(torch_decoder.caches, keras_decoder.caches):
        np.testing.assert_allclose(ops.convert_to_numpy(ours), ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(CachedDecoder, "predict_on_batch", lambda *args: pytest.fail("the Keras step ran"))
    monkeypatch.setattr(CachedSampler, "predict_on_batch", lambda *args: pytest.fail("the Keras step ran"))
    np.testing.assert_array_equal(model.generate(prompt, max_new_tokens=6, temperature=0), sequence)
