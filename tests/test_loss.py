"""The training loss and the schedule: Keras' numbers, without a host synchronisation per step."""

import collections

import keras
import numpy as np
import pytest
from keras import ops

from keras_tx import GPT
from keras_tx_tools.training.loss import SparseCrossEntropy
from keras_tx_tools.training.recipe import nanogpt_adamw


def _keras_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("shape", [(3, 5, 11), (4, 7), (2, 1, 3, 6)])
def test_equals_keras_sparse_categorical_crossentropy(shape, rng):
    logits = (3 * rng.standard_normal(shape)).astype("float32")
    labels = rng.integers(0, shape[-1], shape[:-1])
    weights = rng.random(shape[:-1]).astype("float32")
    for reduction in ("sum_over_batch_size", "sum", None):
        ours = SparseCrossEntropy(reduction=reduction)(labels, logits, sample_weight=weights)
        theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)(
            labels, logits, sample_weight=weights)
        np.testing.assert_allclose(ops.convert_to_numpy(ours), ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-6)


def test_equals_numpy_log_softmax(rng):
    logits = (5 * rng.standard_normal((2, 3, 50304))).astype("float32")
    labels = rng.integers(0, 50304, (2, 3))
    shifted = logits.astype("float64") - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, labels[..., None], -1).mean()
    assert float(SparseCrossEntropy()(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_labels_with_a_trailing_axis_of_one_are_accepted(rng):
    logits = rng.standard_normal((2, 4, 9)).astype("float32")
    labels = rng.integers(0, 9, (2, 4))
    assert float(SparseCrossEntropy()(labels[..., None], logits)) == pytest.approx(
        float(_keras_loss()(labels, logits)), rel=1e-6)


def test_low_precision_logits_are_taken_in_float32(rng):
    # bfloat16 logits of 8 units apart: in bfloat16 arithmetic the log-sum-exp
    # would round to the largest logit; in float32 it does not.
    logits = np.array([[256.0, 248.0, 240.0]], "float32")
    loss = SparseCrossEntropy()(np.array([0]), ops.cast(logits, "bfloat16"))
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    assert float(loss) == pytest.approx(np.log1p(np.exp(-8.0) + np.exp(-16.0)), rel=1e-3)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_training_with_it_takes_the_steps_of_keras_loss(policy, rng):
    """Same weights, same batches: the keras loss and ours give the same model."""
    keras.mixed_precision.set_dtype_policy(policy)
    data = rng.integers(0, 29, (8, 9))
    trained = []
    for loss in (_keras_loss(), SparseCrossEntropy()):
        keras.utils.set_random_seed(7)
        model = GPT(vocab_size=29, max_length=8, embed_dim=16, num_heads=2, num_layers=1)
        model.compile(optimizer=nanogpt_adamw(1e-2, total_steps=4, warmup_steps=1), loss=loss)
        history = model.fit(data[:, :-1], data[:, 1:], batch_size=4, epochs=2, shuffle=False, verbose=0)
        trained.append((history.history["loss"], [ops.convert_to_numpy(w) for w in model.weights]))
    (keras_history, keras_weights), (our_history, our_weights) = trained
    np.testing.assert_allclose(our_history, keras_history, rtol=1e-5)
    for ours, theirs in zip(our_weights, keras_weights):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)  # a step is 1e-2


def test_a_compiled_model_saves_and_loads_with_it(tmp_path):
    model = GPT(vocab_size=11, max_length=4, embed_dim=8, num_heads=2, num_layers=1)
    model.compile(optimizer=nanogpt_adamw(1e-3, total_steps=10), loss=SparseCrossEntropy())
    model.fit(np.zeros((2, 4), "int32"), np.zeros((2, 4), "int32"), verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(restored.loss, SparseCrossEntropy)
    assert float(restored.optimizer.learning_rate) == pytest.approx(float(model.optimizer.learning_rate))


def _host_syncs_in_fit(model, optimizer, data):
    """`aten::_local_scalar_dense` calls in one `fit` of two steps (a warm `fit` first).

    Every read of a device value by the host (`.item()`, `bool(tensor)`,
    `float(tensor)`) goes through this operator, and on a GPU each one waits
    for all queued work to finish.
    """
    from torch.profiler import ProfilerActivity, profile

    model.compile(optimizer=optimizer, loss=SparseCrossEntropy())
    model.fit(data[:, :-1], data[:, 1:], batch_size=4, verbose=0)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        model.fit(data[:, :-1], data[:, 1:], batch_size=4, verbose=0)
    return collections.Counter(event.name for event in profiler.events())["aten::_local_scalar_dense"]


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="counts PyTorch operators")
@pytest.mark.parametrize("steps", [2, 4])
def test_a_torch_fit_step_has_no_host_synchronisation(steps, rng):
    """keras_tx's model, loss and optimizer recipe add no host read to a training step.

    The baseline is a two-layer Keras model with a constant-rate Adam: what
    Keras' own `fit` loop reads back (a few reads per `fit` call, for the
    logs, not per step) is counted there too and cancels. Keras'
    `CosineDecay` with a warm-up would add one read per step (`ops.cond`),
    as would `SGD`; the recipe's schedule adds none. The count is the same
    for two and for four steps.
    """
    data = rng.integers(0, 97, (4 * steps, 9))
    baseline = keras.Sequential([keras.layers.Embedding(97, 8), keras.layers.Dense(97)])
    gpt = GPT(vocab_size=97, max_length=8, embed_dim=16, num_heads=2, num_layers=1)
    baseline_syncs = _host_syncs_in_fit(baseline, keras.optimizers.Adam(), data)
    assert _host_syncs_in_fit(gpt, nanogpt_adamw(1e-3, total_steps=100), data) == baseline_syncs


def _loss_operators(model, data):
    """The PyTorch loss operators one training step of `model` runs, with their input shapes."""
    from torch.profiler import profile

    model.compile(optimizer="adam", loss=_keras_loss())
    with profile(record_shapes=True) as profiler:
        model.train_on_batch(data[:, :-1], data[:, 1:])
    return [(event.name, event.input_shapes[0]) for event in profiler.events()
            if event.name in ("aten::_log_softmax", "aten::nll_loss", "aten::nll_loss2d")]


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="counts PyTorch operators")
def test_keras_own_loss_takes_the_row_path_on_torch(rng):
    """`compile(loss=SparseCategoricalCrossentropy(from_logits=True))` on a GPT is the fast code.

    PyTorch's slow path for `(B, T, V)` logits is the spatial loss, `nll_loss2d`,
    behind a log-softmax over `(B, V, T)`; a plain Keras model with a 3-D output
    shows it, the GPT must not: its log-softmax and loss run on `(B * T, V)` rows.
    """
    data = rng.integers(0, 97, (4, 9))
    plain = _loss_operators(keras.Sequential([keras.layers.Embedding(97, 97)]), data)
    assert ("aten::nll_loss2d", [4, 97, 1, 8]) in plain  # the signal exists
    gpt = _loss_operators(GPT(vocab_size=97, max_length=8, embed_dim=16, num_heads=2, num_layers=1), data)
    assert gpt and {name for name, _ in gpt} == {"aten::_log_softmax", "aten::nll_loss"}
    assert all(shape == [32, 97] for _, shape in gpt if shape and len(shape) == 2)
    assert all(len(shape) <= 2 for _, shape in gpt)


@pytest.mark.parametrize("weights", ["none", "per token", "per sequence"])
def test_a_gpt_reports_keras_own_loss(weights, rng):
    """On rows, Keras' loss gives the value it gives on `(B, T, V)` logits; a per-sequence
    weight counts for every token of its sequence."""
    model = GPT(vocab_size=23, max_length=6, embed_dim=8, num_heads=2, num_layers=1)
    model.compile(loss=_keras_loss())
    inputs, labels = rng.integers(0, 23, (2, 3, 6))
    sample_weight = {"none": None, "per token": rng.random((3, 6)).astype("float32"),
                     "per sequence": rng.random(3).astype("float32")}[weights]
    per_token = None if sample_weight is None else np.broadcast_to(np.reshape(sample_weight, (3, -1)), (3, 6))
    expected = _keras_loss()(labels, model.predict(inputs, verbose=0), sample_weight=per_token)
    assert model.evaluate(inputs, labels, sample_weight=sample_weight, verbose=0) == pytest.approx(
        float(expected), rel=1e-6)
