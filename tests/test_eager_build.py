"""A layer built by its first eager call holds what Keras' symbolic build would have made.

While grading, every fresh model is built by its first call (`grader.eager_build`). These cases build
the same models both ways, from the same seed, and compare weights and outputs, and prove by its
effect that the symbolic run is skipped: the first call runs `call` once, not twice.
"""

import keras
import numpy as np
import pytest
from keras.src.layers import layer as keras_layer

from grader.eager_build import first_call_builds
from keras_tx import GPT


@pytest.fixture
def built_by_first_call():
    """`first_call_builds` for this test."""
    with first_call_builds():
        yield


class Counter(keras.layers.Layer):
    """A layer with a sublayer and no `build`, which counts the runs of its `call`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3)
        self.runs = 0

    def call(self, x):
        self.runs += 1
        return self.dense(x)


class MadeInCall(keras.layers.Layer):
    """A layer with a sublayer that makes a weight in its first `call`, which Keras' symbolic build allows."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, kernel_initializer="identity", use_bias=False)

    def call(self, x):
        if not hasattr(self, "scale"):
            self.scale = self.add_weight(shape=(x.shape[-1],), initializer="ones")
        return self.dense(x) * self.scale


def built_gpt(token_ids):
    keras.utils.set_random_seed(3)
    model = GPT(vocab_size=11, max_length=6, embed_dim=8, num_heads=2, num_layers=2, ff_dim=16)
    return model, keras.ops.convert_to_numpy(model(token_ids))


def test_the_first_call_makes_the_weights_keras_symbolic_build_makes():
    token_ids = np.random.default_rng(0).integers(0, 11, (2, 6)).astype("int32")
    symbolic, symbolic_logits = built_gpt(token_ids)
    with first_call_builds(), first_call_builds():  # nested, as a grader inside a grader
        eager, eager_logits = built_gpt(token_ids)
    assert [w.path.split("/", 1)[1] for w in eager.weights] == [w.path.split("/", 1)[1] for w in symbolic.weights]
    for mine, keras_own in zip(eager.weights, symbolic.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(keras_own))
    np.testing.assert_array_equal(eager_logits, symbolic_logits)
    assert eager.built and all(layer.built for layer in eager._flatten_layers())


def keras_own_build_runs():
    """How often a fresh layer's first eager call runs its `call`: 2 with Keras' symbolic build first."""
    layer = Counter()
    layer(np.ones((2, 4), "float32"))
    return layer.runs


def test_the_symbolic_run_is_skipped_only_for_an_eager_first_call():
    assert keras_own_build_runs() == 2  # Keras: once on symbolic inputs, once on the real ones
    with first_call_builds():
        layer = Counter()
        layer(np.ones((2, 4), "float32"))
        assert layer.runs == 1 and layer.built and layer.dense.kernel.shape == (4, 3)
        layer(np.ones((2, 4), "float32"))
        assert layer.runs == 2

        symbolic = Counter()
        symbolic(keras.KerasTensor((2, 4)))  # as a functional model calls it: still built by a symbolic run
        assert symbolic.runs == 2 and symbolic.dense.kernel.shape == (4, 3)


def test_keras_own_build_is_back_after_the_block_even_after_an_error():
    with pytest.raises(RuntimeError), first_call_builds():
        raise RuntimeError("a check that fails")
    assert keras_own_build_runs() == 2
    assert keras_layer.Layer._maybe_build.__qualname__ == "Layer._maybe_build"


def test_a_weight_made_in_call_is_made_once(built_by_first_call):
    layer = MadeInCall()
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    assert len(layer.weights) == 2


def test_a_layer_with_its_own_build_is_built_by_it(built_by_first_call):
    dense = keras.layers.Dense(2)
    dense(np.ones((1, 5), "float32"))
    assert dense.kernel.shape == (5, 2)
    with pytest.raises(ValueError, match="cannot add new elements of state"):
        dense.extra = keras.layers.Dense(1)  # built by its own build(): locked as Keras locks it
