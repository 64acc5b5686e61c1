"""Training over many devices with `keras_tx.gpt_layout_map`, without the hardware.

JAX can split one CPU into several virtual devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``), but only when the
flag is set before JAX starts. So the tests that train run this file as a
script, in a fresh JAX process, whatever the backend of the test run:

    python tests/test_distribution.py devices         # 8 devices, one process
    python tests/test_distribution.py process 0 PORT  # 4 devices, process 0 of 2

Each prints one JSON line: the losses, the shardings of the weights, the
generated tokens. The tests compare them with one device. The layout's rules
are also checked against the variable paths of real models, on every backend.
"""

import json
import os
import re
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_tx import GPT, TransformerClassifier
from keras_tx.distribution import BATCH_AXIS, GPT_LAYOUT, MODEL_AXIS, gpt_layout_map
from keras_tx.generation import CachedDecoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESH = (2, 4)  # batch x model
DEVICES = MESH[0] * MESH[1]
DIMS = dict(vocab_size=32, max_length=16, embed_dim=32, num_heads=4, num_layers=2, dropout=0.0)
STEPS, GLOBAL_BATCH, SEED = 4, 8, 7
M = MODEL_AXIS
# What each variable of a GPT, a classifier and a decoder cache must get, by its
# path without the model's name and block number. A renamed layer fails here.
EXPECTED_AXES = {
    "embedding/token_embedding/embeddings": (None, M),
    "embedding/position_embedding/embeddings": (None, M),
    **{f"attention/{name}_dense/kernel": (None, M) for name in ("query", "key", "value")},
    **{f"attention/{name}_dense/bias": (M,) for name in ("query", "key", "value")},
    "attention/output_dense/kernel": (M, None),
    "attention/output_dense/bias": None,
    "ffn_in/kernel": (None, M),
    "ffn_in/bias": (M,),
    "ffn_out/kernel": (M, None),
    "ffn_out/bias": None,
    **{f"{norm}/{weight}": None for norm in ("norm1", "norm2", "final_norm") for weight in ("gamma", "beta")},
    "lm_head/kernel": (M, None),
    "head/kernel": None,
    "head/bias": None,
    "seed_generator_state": None,
    "cache_0": (None, None, None, M, None),
    "cache_1": (None, None, None, M, None),
}


# ---- the JAX side: run as a script, in a process of its own -------------------------------------


def batches():
    """`STEPS` global batches of random token ids, and their next tokens."""
    x = np.random.default_rng(0).integers(0, DIMS["vocab_size"], (STEPS, GLOBAL_BATCH, DIMS["max_length"]))
    return x.astype("int32"), np.roll(x, -1, axis=2).astype("int32")


def model_parallel(devices, **options):
    mesh = keras.distribution.DeviceMesh(MESH, (BATCH_AXIS, MODEL_AXIS), devices)
    return keras.distribution.ModelParallel(layout_map=gpt_layout_map(mesh), batch_dim_name=BATCH_AXIS, **options)


def train(distribution, rows=slice(None)):
    """A GPT made under `distribution` and trained for `STEPS` steps on `rows` of each
    global batch (a process feeds its own rows); returns it and the loss of every step."""
    keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(SEED)
    model = GPT(**DIMS, name="gpt")
    model.compile(optimizer=keras.optimizers.AdamW(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = batches()
    return model, [float(model.train_on_batch(x[step, rows], y[step, rows])) for step in range(STEPS)]


def shardings(variables):
    """{path: {"axes": the mesh axis of each tensor axis, "shape", "shard": one device's part}}."""
    found = {}
    for variable in variables:
        value, shape = variable.value, list(variable.shape)
        axes = list(value.sharding.spec)
        found[variable.path] = {"axes": axes + [None] * (len(shape) - len(axes)), "shape": shape,
                                "shard": list(value.addressable_shards[0].data.shape)}
    return found


def on_eight_devices():
    devices = keras.distribution.list_devices()
    _, single = train(None)
    _, data = train(keras.distribution.DataParallel(devices=devices))
    gpt, model = train(model_parallel(devices))
    classifier = TransformerClassifier(**DIMS, num_classes=2)
    prompts = batches()[0][0, :2, :5]
    classifier(prompts)
    generated = {size: gpt.generate(prompts[:size], max_new_tokens=8, temperature=0).tolist() for size in (1, 2)}
    weights = {**shardings(gpt.variables), **shardings(classifier.variables),
               **shardings(CachedDecoder(gpt, batch_size=2, name="cached_decoder").caches)}
    keras.distribution.set_distribution(None)
    reference = GPT(**DIMS)
    reference.build((None, None))
    reference.set_weights(gpt.get_weights())
    expected = {size: reference.generate(prompts[:size], max_new_tokens=8, temperature=0).tolist() for size in (1, 2)}
    return {"losses": {"single": single, "data": data, "model": model}, "weights": weights,
            "optimizer": shardings(gpt.optimizer.variables), "generated": generated, "expected": expected}


def in_one_of_two_processes(process_id, port):
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives between CPU processes
    process_id = int(process_id)
    keras.distribution.initialize(job_addresses=f"localhost:{port}", num_processes=2, process_id=process_id)
    # Each process owns one row of the mesh (its 4 devices), so one data-parallel group: half the batch.
    half = GLOBAL_BATCH // 2
    distribution = model_parallel(keras.distribution.list_devices(), auto_shard_dataset=False)
    _, losses = train(distribution, rows=slice(process_id * half, (process_id + 1) * half))
    return {"losses": losses, "devices": jax.device_count(), "local_devices": jax.local_device_count()}


SCENARIOS = {"devices": on_eight_devices, "process": in_one_of_two_processes}


# ---- the tests ------------------------------------------------------------------------------------


def jax_process(*arguments, devices=DEVICES):
    """This file run as a script with `arguments`, in a JAX process with `devices` CPU devices."""
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, __file__, *arguments], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def results(process, timeout=900):
    """The JSON line the script printed last."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        process.kill()
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.splitlines()[-1])


# Each test below starts its own processes with the backend it needs, whatever the backend of
# this one: `course` runs them once, not once per backend.
RUN_ONCE = pytest.mark.course


@pytest.fixture(scope="module")
def eight_devices():
    return results(jax_process("devices"))


def layout_map():
    mesh = keras.distribution.DeviceMesh(MESH, (BATCH_AXIS, MODEL_AXIS), [f"cpu:{i}" for i in range(DEVICES)])
    return gpt_layout_map(mesh)


def expected_axes(layout, path, shape):
    layout = layout[path]
    return [None] * len(shape) if layout is None else list(layout.axes)


@RUN_ONCE
@pytest.mark.slow
def test_data_and_model_parallel_training_match_one_device(eight_devices):
    losses = eight_devices["losses"]
    assert losses["single"][-1] < losses["single"][0]  # it learns, so the steps differ
    np.testing.assert_allclose(losses["data"], losses["single"], rtol=1e-5)
    np.testing.assert_allclose(losses["model"], losses["single"], rtol=1e-5)


@RUN_ONCE
@pytest.mark.slow
def test_weights_are_split_as_the_layout_says(eight_devices):
    layout, sizes = layout_map(), dict(zip((BATCH_AXIS, MODEL_AXIS), MESH))
    weights = eight_devices["weights"]
    for path, found in weights.items():
        assert found["axes"] == expected_axes(layout, path, found["shape"]), path
        assert found["shard"] == [size // sizes.get(axis, 1) for size, axis in zip(found["shape"], found["axes"])]
    split = {path for path, found in weights.items() if M in found["axes"]}
    assert "gpt/block_1/ffn_out/kernel" in split and "transformer_classifier/block_0/ffn_in/kernel" in split
    assert "cached_decoder/cache_0" in split and "transformer_classifier/head/kernel" not in split


@RUN_ONCE
@pytest.mark.slow
def test_optimizer_moments_are_split_like_their_weights(eight_devices):
    optimizer = eight_devices["optimizer"]
    for path, found in eight_devices["weights"].items():
        if path.startswith("gpt/"):
            for moment in ("momentum", "velocity"):
                (slot,) = [p for p in optimizer if p.endswith("/" + path.replace("/", "_") + "_" + moment)]
                assert optimizer[slot]["axes"] == found["axes"] and optimizer[slot]["shard"] == found["shard"]


@RUN_ONCE
@pytest.mark.slow
def test_cached_generation_on_a_sharded_model_matches_one_device(eight_devices):
    assert eight_devices["generated"] == eight_devices["expected"]
    assert len(eight_devices["generated"]["2"][0]) == 5 + 8


@RUN_ONCE
@pytest.mark.slow
def test_two_processes_train_to_the_same_losses_as_one(eight_devices):
    with socket.socket() as probe:  # a free port for the coordinator
        probe.bind(("localhost", 0))
        port = str(probe.getsockname()[1])
    processes = [jax_process("process", str(process_id), port, devices=DEVICES // 2) for process_id in (0, 1)]
    try:
        both = [results(process) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process in both:
        assert (process["devices"], process["local_devices"]) == (DEVICES, DEVICES // 2)
        np.testing.assert_allclose(process["losses"], eight_devices["losses"]["single"], rtol=1e-5)


def built_models():
    ids = np.zeros((1, 4), "int32")
    gpt, untied = GPT(**DIMS), GPT(**DIMS, tie_weights=False)
    classifier = TransformerClassifier(**DIMS, num_classes=2)
    for model in (gpt, untied, classifier):
        model(ids)
    return [*gpt.variables, *untied.variables, *classifier.variables, *CachedDecoder(untied, batch_size=1).caches]


def test_the_layout_rules_fit_the_real_variable_paths():
    layout, matched = layout_map(), set()
    for variable in built_models():
        role = re.sub(r"^[^/]+/(block_\d+/)?", "", variable.path)  # without the model name and block
        assert role in EXPECTED_AXES, f"no expected layout for {variable.path}"
        axes = layout[variable.path]
        assert (axes and axes.axes) == EXPECTED_AXES[role], variable.path
        if axes is not None:
            assert len(axes.axes) == len(variable.shape), variable.path
            matched.update(pattern for pattern, _ in GPT_LAYOUT if re.search(pattern, variable.path))
    assert matched == {pattern for pattern, _ in GPT_LAYOUT}  # no rule left without a variable


def test_layout_map_needs_a_batch_and_a_model_axis():
    mesh = keras.distribution.DeviceMesh((2, 4), ("data", "model"), [f"cpu:{i}" for i in range(DEVICES)])
    with pytest.raises(ValueError, match=r"axes \('batch', 'model'\), got axis_names=\('data', 'model'\)"):
        gpt_layout_map(mesh)
    with pytest.raises(ValueError, match="must be a keras.distribution.DeviceMesh"):
        gpt_layout_map((2, 4))


def keras_tx_train(*flags, devices=DEVICES):
    """`keras-tx train reverse` with `flags`, a short run, in a process with `devices` CPU devices."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "keras_tx_tools", "train", "reverse", "--half-length", "6",
               "--steps", "8", "--epochs", "1", "--num-validation", "64", *flags]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)


@RUN_ONCE
@pytest.mark.slow
def test_train_splits_the_model_over_a_2x4_mesh(tmp_path):
    run = keras_tx_train("--backend", "jax", "--distribute", "model", "--mesh", "2x4", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ModelParallel over 8 cpu devices: batch 2 x model 4" in run.stdout
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert "--distribute model --mesh 2x4" in record["command"] and record["history"]["loss"]


@RUN_ONCE
@pytest.mark.parametrize("backend, instead", [("torch", "torch.distributed"), ("tensorflow", "tf.distribute")])
def test_distribute_off_jax_stops_with_one_line_saying_what_to_use(backend, instead, tmp_path):
    run = keras_tx_train("--backend", backend, "--distribute", "data", "--out", str(tmp_path))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    message = run.stderr.strip().splitlines()[-1]
    assert message.startswith(f"keras-tx train: error: --distribute runs on the JAX backend only") and instead in message


def test_mesh_flag_is_checked_before_training(tmp_path, capsys):
    from keras_tx_tools.cli import main

    with pytest.raises(SystemExit) as usage_error:
        main(["train", "reverse", "--distribute", "model", "--mesh", "2by4"])
    assert usage_error.value.code == 2 and "expected BATCHxMODEL" in capsys.readouterr().err
    assert main(["train", "reverse", "--mesh", "2x4", "--out", str(tmp_path)]) == 1
    assert "--mesh needs --distribute, one of: data, model, auto." in capsys.readouterr().err

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]](*sys.argv[2:])))
