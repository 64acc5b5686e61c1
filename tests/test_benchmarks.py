"""Smoke tests of the benchmarks: each one runs from its command line and writes a full report.

The `--quick` versions of all the benchmarks run side by side, on the current
backend only, as `python -m benchmarks ...` subprocesses; those that always run on
one backend (`FIXED_BACKEND`) run in that backend's test run only. The tests never
assert timings -- a shared CI machine makes those meaningless -- but what the
numbers rest on: the contenders are the same model, every sample is kept, the
report names the machine and the library versions. The tests that read the
reports are marked `slow` (about two minutes on 2 cores): `bash
scripts/test-all-backends.sh --slow` runs them, on every backend.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch

from benchmarks import training
from benchmarks.__main__ import main
from benchmarks.native_torch_gpt import NativeTorchGPT, copy_weights, keras_layout, paired_variables
from benchmarks.stock_keras_gpt import StockKerasGPT
from grader.sandbox import bubblewrap_works
from keras_tx import GPT
from keras_tx_tools.training.schedule import nanogpt_schedule

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXED_BACKEND = {
    "distribution": "jax",  # Keras' distribution API
    "threads": "torch",  # PyTorch reads its thread count at run time
    "fork-safety": "torch",  # the backend whose graders fork warm
}
"""The benchmarks that run on one backend whatever the test run's: tested in that backend's run only."""
QUICK_RUNS = {
    "training": [],
    "memory": ["--implementations", "native_torch"],
    "generation": ["--implementations", "keras_tx,transformers"],
    "grader": [],
    "accuracy": ["--data", "{text}"],
    "accelerator": [],
    **{name: [] for name, backend in FIXED_BACKEND.items() if backend == BACKEND},
    **({"grade-all": []} if bubblewrap_works() else {}),  # it measures grading with the sandbox only
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Every quick benchmark, run at once: {name: parsed JSON report}."""
    folder = tmp_path_factory.mktemp("benchmarks")
    text = folder / "text.txt"
    text.write_text("To be, or not to be, that is the question.\n" * 40)
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "benchmarks", name, "--quick", "--backends", BACKEND,
             "--out", str(folder / f"{name}.json"),
             *(argument.format(text=text) for argument in arguments)],
            cwd=ROOT, env=dict(os.environ, KERAS_BACKEND=BACKEND),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, arguments in QUICK_RUNS.items()}
    outputs = {name: process.communicate()[0] for name, process in processes.items()}
    failed = {name: outputs[name][-3000:] for name, p in processes.items() if p.returncode}
    assert not failed, failed
    return {name: json.loads((folder / f"{name}.json").read_text()) for name in QUICK_RUNS}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(QUICK_RUNS))
def test_every_report_names_the_machine_and_the_versions(reports, name):
    machine = reports[name]["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["date"]
    assert machine["versions"]["keras"] == keras.__version__
    assert machine["versions"]["torch"] == torch.__version__


def test_the_three_models_have_the_same_parameters_and_outputs():
    dims = dict(vocab_size=11, max_length=8, embed_dim=16, num_heads=4, num_layers=2)
    token_ids = keras.Input((dims["max_length"],), dtype="int32")  # symbolic: builds, fast
    ours, stock, native = GPT(**dims), StockKerasGPT(**dims), NativeTorchGPT(**dims)
    expected_shape = (None, dims["max_length"], dims["vocab_size"])
    assert tuple(ours(token_ids).shape) == tuple(stock(token_ids).shape) == expected_shape
    assert ours.count_params() == stock.count_params()
    assert sum(p.numel() for p in native.parameters()) == ours.count_params()
    native_logits = native(torch.zeros((2, dims["max_length"]), dtype=torch.long))
    assert tuple(native_logits.shape) == (2, *expected_shape[1:])


@pytest.mark.parametrize("peak", [1e-3, 3e-3])
@pytest.mark.parametrize("total_steps", [2000, 7])
def test_the_torch_schedule_equals_the_keras_one(total_steps, peak):
    schedule = nanogpt_schedule(peak, total_steps, training.WARMUP_STEPS)
    for step in sorted({0, 1, total_steps // 4, total_steps // 2, total_steps - 1, total_steps}):
        assert float(schedule(step)) == pytest.approx(training.learning_rate(step, total_steps, peak))


@pytest.mark.slow
def test_training_compares_all_three_in_interleaved_rounds(reports):
    report = reports["training"]
    runs = report["samples"]["tiny"]["runs"]
    assert set(runs) == {f"keras_tx[{BACKEND}]", f"stock_keras[{BACKEND}]", "native_torch"}
    assert all(len(samples) == 2 and all(s["tokens_per_second"] > 0 for s in samples)
               for samples in runs.values())
    workers = report["samples"]["tiny"]["workers"]
    assert len({info["parameters"] for info in workers.values()}) == 1
    assert set(report["summary"]["tiny"]["ratios"]) == {
        f"keras_tx[{BACKEND}]/native_torch", f"keras_tx[{BACKEND}]/stock_keras[{BACKEND}]",
        f"stock_keras[{BACKEND}]/native_torch"}


@pytest.mark.slow
def test_memory_reports_the_peak_above_the_imports(reports):
    memory = reports["memory"]["summary"]["tiny"]["native_torch"]
    assert memory["peak_mb"] >= memory["after_imports_mb"] > 0


@pytest.mark.slow
def test_generation_times_cached_and_recomputed_decoding(reports):
    report = reports["generation"]
    runs = report["samples"]["runs"]
    assert set(runs) == {f"keras_tx[{BACKEND}]", "transformers"}
    for samples in runs.values():
        assert len(samples) == 2
        for mode in ("cache", "recompute"):
            # generate() to 1, 1 + window, new - window and new tokens.
            assert set(samples[0][mode]) == {"1", "2", "3", "4"}
    assert len(report["samples"]["derived"][f"keras_tx[{BACKEND}] cache"]) == 2
    workers = report["samples"]["workers"]
    assert workers[f"keras_tx[{BACKEND}]"]["parameters"] == workers["transformers"]["parameters"]
    assert set(report["summary"]["ratios"]) == {
        f"keras_tx[{BACKEND}] cache/recompute", "transformers cache/recompute",
        f"keras_tx[{BACKEND}] cache/transformers cache"}
    assert report["config"]["model"]["max_length"] == 320  # 64 + 256 tokens fit in full runs


@pytest.mark.slow
def test_accelerator_table_has_every_row_and_contender(reports):
    """The smoke run of the GPU table, on this machine's CPU and the current backend."""
    report = reports["accelerator"]
    keras_tx = [f"keras_tx[{BACKEND}]"] if BACKEND in ("torch", "jax") else []
    training_rows = report["samples"]["training"]
    assert set(training_rows) == {"tiny mixed_bfloat16", "tiny float32"}
    assert set(training_rows["tiny mixed_bfloat16"]) == {"native_torch", *keras_tx}
    assert set(training_rows["tiny float32"]) == {"native_torch", "native_torch[compile]", *keras_tx}
    for row in training_rows.values():
        assert len({contender["info"]["parameters"] for contender in row.values()}) == 1
        assert all(contender["runs"][0]["tokens_per_second"] > 0 for contender in row.values())
    generation = report["summary"]["generation"]
    assert set(generation) == {"transformers", *keras_tx}
    assert generation["transformers"]["over_transformers"] == 1.0
    assert report["summary"]["skipped"] == []


@pytest.mark.slow
@pytest.mark.backend(FIXED_BACKEND["distribution"])
def test_distribution_splits_the_weights_over_model_parallel_devices(reports):
    summary = reports["distribution"]["summary"]
    assert set(summary) == {"one device", "data[2]", "model[2]"}
    assert summary["one device"]["over_one_device"] == 1.0
    # DataParallel copies the weights and moments; ModelParallel splits the large ones.
    assert summary["data[2]"]["state_mb_per_device"] == summary["one device"]["state_mb_per_device"]
    assert summary["model[2]"]["state_mb_per_device"] < 0.6 * summary["one device"]["state_mb_per_device"]
    workers = reports["distribution"]["samples"]["workers"]
    assert [workers[label]["distribution"] for label in summary] == [None, "DataParallel", "ModelParallel"]


@pytest.mark.slow
def test_grader_latency_times_the_grader_command(reports):
    report = reports["grader"]
    assert [len(samples) for samples in report["samples"].values()] == [1]
    assert "grader --solutions --backend B" in report["config"]["command"]


@pytest.mark.slow
def test_accuracy_trains_both_models_on_the_given_text(reports):
    report = reports["accuracy"]
    (ours,), (native,) = report["samples"][f"keras_tx[{BACKEND}]"], report["samples"]["native_torch"]
    assert ours["parameters"] == native["parameters"]
    # 4 steps from random weights: both losses still near log(vocabulary size).
    for run in (ours, native):
        assert 0 < run["validation_loss"] < 2 * np.log(report["config"]["dims"]["vocab_size"])


@pytest.mark.parametrize("arguments, message", [
    (["training", "--backends", "theano"], "--backends: unknown backend 'theano'"),
    (["training", "--shapes", "huge"], "--shapes: unknown shape 'huge'"),
    (["generation", "--window", "500"], "--window must be between 1 and"),
    (["accuracy", "--data", "missing.txt"], "Cannot read the text given by --data"),
    (["grader", "--threads", "0"], "--threads must be at least 1"),
    (["distribution", "--devices", "0,2"], "--devices must be positive integers"),
    (["distribution", "--backends", "torch"], "the distribution benchmark runs on JAX"),
    (["fork-safety", "--child-timeout", "0"], "--child-timeout must be a positive number of seconds"),
])
def test_bad_options_get_one_clear_line(arguments, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as error:
        main([*arguments, "--out", str(tmp_path / "report.json")])
    assert message in str(error.value) + capsys.readouterr().err


def test_keras_tx_trains_step_for_step_like_the_native_pytorch_gpt():
    """Same weights, same batches, same recipe: the same updates, to round-off.

    This checks keras_tx against an independent implementation end to end:
    forward pass, gradients, AdamW with its decoupled weight decay, gradient
    clipping and the learning-rate schedule. A Keras AdamW without weight
    decay, or with beta_2 0.999, ends 1e-4 away in loss. The weights are drawn
    with a standard deviation of 0.3, not GPT-2's 0.02: at 0.02 the attention
    is nearly uniform, the query/key gradients are ~1e-9, and Adam, which
    divides every gradient by its own size, turns round-off into real steps.
    """
    dims = dict(vocab_size=13, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
    rng = np.random.default_rng(0)
    inputs, targets = (rng.integers(0, dims["vocab_size"], (48, dims["max_length"])).astype("int32")
                       for _ in range(2))
    torch.manual_seed(0)
    native = training.Trainer("native_torch", dims, batch_size=4, total_steps=12)
    with torch.no_grad():
        for parameter in native.model.parameters():
            parameter.normal_(std=0.3)
    ours = training.Trainer("keras_tx", dims, batch_size=4, total_steps=12)
    ours.model(inputs[:1])
    copy_weights(native.model, ours.model)
    start = keras_layout(native.model)
    loss_before = native.loss(inputs, targets)

    native.fit(inputs, targets)
    ours.fit(inputs, targets)

    assert native.loss(inputs, targets) < loss_before - 0.1  # the 12 steps did learn
    assert ours.loss(inputs, targets) == pytest.approx(native.loss(inputs, targets), abs=2e-5)
    end = keras_layout(native.model)
    for variable, name in paired_variables(ours.model):
        if name.endswith("key.bias"):
            continue  # its gradient is zero: the softmax ignores a shift shared by a whole row
        native_update = end[name] - start[name]
        our_update = keras.ops.convert_to_numpy(variable) - start[name]
        assert np.abs(our_update - native_update).max() < 0.03 * np.abs(native_update).max(), name


@pytest.mark.slow
@pytest.mark.backend(FIXED_BACKEND["threads"])
def test_threads_compares_the_old_default_with_the_free_cores_under_load(reports):
    report = reports["threads"]
    assert set(report["samples"]) == {"before", "after"}
    assert all(len(samples) == 1 and samples[0] > 0 for samples in report["samples"].values())
    assert report["summary"]["threads_before"] == os.cpu_count()
    assert report["config"]["busy"] == 1 and len(report["summary"]["load_average_with_busy"]) == 3


@pytest.mark.slow
@pytest.mark.backend(FIXED_BACKEND["fork-safety"])
def test_a_pytorch_child_forked_after_a_computation_still_runs(reports):
    """PyTorch's warm grader trains once before it forks (`grader.student_process`): its children must not hang."""
    report = reports["fork-safety"]
    assert report["summary"]["torch"]["hung"] == 0
    assert all(len(seconds) == 1 and seconds[0] > 0 for seconds in report["samples"]["torch"].values())
