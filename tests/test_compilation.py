"""The grader's JAX compilation settings change how fast programs are made, never what they compute.

Each case runs in a fresh process: the settings must be made before JAX starts (the XLA flags)
or change it for the rest of the process (one MLIR context), which no test may leave behind.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.course  # each case starts a process of its own

ROOT = Path(__file__).resolve().parents[1]


def run_python(code, **environment):
    """Run `code` in a fresh Python with the project importable; return what it printed last, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **environment}
    finished = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                              text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_fast_compilation_adds_its_flags_and_keeps_chosen_values():
    code = """
        import json, os
        from grader.compilation import prefer_fast_compilation
        prefer_fast_compilation()
        print(json.dumps(os.environ["XLA_FLAGS"]))
    """
    assert run_python(code, XLA_FLAGS="--xla_cpu_enable_fast_math=false") == (
        "--xla_cpu_enable_fast_math=false --xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false")
    assert run_python(code, XLA_FLAGS="--xla_backend_optimization_level=2 --xla_cpu_use_fusion_emitters=true") == (
        "--xla_backend_optimization_level=2 --xla_cpu_use_fusion_emitters=true")


def test_tensorflow_graphs_run_as_traced_to_the_same_results():
    """Without Grappler's rewrites, a traced function computes what it computes eagerly; elsewhere
    the setting is a no-op that does not even import TensorFlow."""
    code = """
        import json, sys
        import keras
        import numpy as np
        from grader.compilation import graphs_as_traced
        graphs_as_traced()
        if keras.backend.backend() != "tensorflow":
            print(json.dumps(["tensorflow" in sys.modules]))
            raise SystemExit
        import tensorflow as tf
        layer = keras.layers.Dense(16, activation="gelu")
        x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
        step = tf.function(lambda x: tf.nn.softmax(layer(x) * 2.0 + 1.0))
        gap = float(np.abs(step(x).numpy() - tf.nn.softmax(layer(x) * 2.0 + 1.0).numpy()).max())
        print(json.dumps([tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer"), gap]))
    """
    switched, gap = run_python(code, KERAS_BACKEND="tensorflow")
    assert switched is True and gap < 1e-6
    assert run_python(code, KERAS_BACKEND="jax") == [False]


def test_the_installed_jaxlib_knows_every_fast_compilation_flag():
    """XLA stops a process at a flag it does not know: JAX starts and computes with all of them."""
    result = run_python("""
        import json
        from grader.compilation import prefer_fast_compilation
        prefer_fast_compilation()
        import jax.numpy as jnp
        print(json.dumps(float(jnp.tanh(jnp.ones(3)).sum())))
    """, XLA_FLAGS="")
    assert result == pytest.approx(3 * 0.7615941559557649, rel=1e-6)


def test_one_ir_context_lowers_many_programs_to_the_same_results():
    """Programs of many shapes, lowered in one context, compute what NumPy computes (values and
    gradients), and JAX's context factory gives that one context every time."""
    results = run_python("""
        import json
        import numpy as np
        from grader.compilation import reuse_ir_context
        import jax, jax.numpy as jnp
        from jax._src.interpreters import mlir

        reuse_ir_context()
        made = [mlir.make_ir_context() for _ in range(3)]
        errors = []
        for n in range(2, 12):
            x = np.linspace(-2, 2, n * 3, dtype="float32").reshape(n, 3)
            expected = np.tanh(x * 2 + 1) @ np.ones((3, 2), "float32") - x.max(axis=0).sum()
            actual = jnp.tanh(jnp.asarray(x) * 2 + 1) @ jnp.ones((3, 2)) - jnp.asarray(x).max(axis=0).sum()
            errors.append(float(np.abs(np.asarray(actual) - expected).max()))
            grad = jax.grad(lambda w: jnp.sum(jnp.tanh(w) ** 2))(jnp.asarray(x))
            errors.append(float(np.abs(np.asarray(grad) - 2 * np.tanh(x) / np.cosh(x) ** 2).max()))
        print(json.dumps({"one_context": all(context is made[0] for context in made), "error": max(errors)}))
    """, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    assert results["one_context"]
    assert results["error"] < 1e-5


def test_random_draws_from_shared_programs_are_the_same_numbers():
    """Keras' initializers draw the same numbers, eagerly and traced, from one program for many
    shapes; a second call wraps nothing twice."""
    results = run_python("""
        import json
        import numpy as np
        import jax, keras
        import jax.monitoring
        from keras.src.backend.jax import random
        from grader.compilation import RANDOM_RUN, shared_random_programs

        shapes = [(12, 36), (23, 12), (3, 4, 5), (7,), (0, 4), (RANDOM_RUN + 1,)]
        draws = {"uniform": lambda shape, seed: random.uniform(shape, -0.5, 0.5, "float32", seed),
                 "normal": lambda shape, seed: random.normal(shape, 1.0, 2.0, "float32", seed),
                 "truncated_normal": lambda shape, seed: random.truncated_normal(shape, 0.0, 1.0, "bfloat16", seed)}
        def everything():
            eager = {f"{name} {shape}": np.asarray(draw(shape, 7), "float32")
                     for name, draw in draws.items() for shape in shapes}
            traced = np.asarray(jax.jit(lambda seed: random.uniform((5, 6), seed=seed))(np.array([3, 4], "uint32")))
            return eager, traced
        before, traced_before = everything()
        shared_random_programs()
        shared_random_programs()
        lowered = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, seconds, **_: lowered.append(event) if event.endswith("jaxpr_to_mlir_module_duration") else None)
        after, traced_after = everything()
        uniform_programs = len(lowered)
        initializer = keras.initializers.GlorotUniform(seed=5)
        print(json.dumps({
            "same": all(np.array_equal(before[key], after[key]) for key in before),
            "same_shapes": all(before[key].shape == after[key].shape for key in before),
            "traced_same": bool(np.array_equal(traced_before, traced_after)),
            "wrapped_once": random.uniform.in_runs_of.__name__ == "uniform" and not hasattr(random.uniform.in_runs_of, "in_runs_of"),
            "glorot_shape": list(np.asarray(initializer((4, 6))).shape),
        }))
    """, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    assert results == {"same": True, "same_shapes": True, "traced_same": True, "wrapped_once": True,
                       "glorot_shape": [4, 6]}


def test_compiled_keras_functions_compute_what_keras_computes_one_program_each():
    """Softmax, log-softmax, GELU and layer normalisation, compiled whole, agree with Keras' own
    (values and gradients, float32 and float16, a list of axes), lower one program each per
    shape, and train a model; a second call wraps nothing twice."""
    results = run_python("""
        import json
        import numpy as np
        import jax, keras
        import jax.monitoring
        from keras.src.backend.jax import nn
        from grader.compilation import compiled_keras_functions

        x = np.random.default_rng(0).normal(size=(2, 5, 12)).astype("float32") * 3
        norm = keras.layers.LayerNormalization(epsilon=1e-5)
        both_axes = keras.layers.LayerNormalization(axis=[1, 2])
        def everything(dtype):
            v = keras.ops.convert_to_tensor(x, dtype)
            grad = jax.grad(lambda w: keras.ops.sum(keras.ops.softmax(w, axis=1) * keras.ops.arange(12.0)))
            return [np.asarray(value, "float32") for value in (
                keras.ops.softmax(v), keras.ops.log_softmax(v, axis=1), keras.activations.gelu(v),
                keras.ops.gelu(v, approximate=False), norm(v), both_axes(v), grad(v.astype("float32")))]
        before = {dtype: everything(dtype) for dtype in ("float32", "float16")}
        compiled_keras_functions()
        compiled_keras_functions()
        after = {dtype: everything(dtype) for dtype in ("float32", "float16")}
        lowered = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, seconds, **_: lowered.append(event) if event.endswith("jaxpr_to_mlir_module_duration") else None)
        keras.ops.softmax(np.ones((3, 7), "float32"))
        softmax_programs = len(lowered)
        model = keras.Sequential([keras.layers.Embedding(5, 4), keras.layers.LayerNormalization(),
                                  keras.layers.Dense(4, activation="gelu"), keras.layers.Dense(5)])
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        tokens = np.zeros((4, 3), "int32")
        loss = model.fit(tokens, tokens, verbose=0).history["loss"][0]
        print(json.dumps({
            "float32": max(float(np.abs(a - b).max()) for a, b in zip(before["float32"], after["float32"])),
            "float16": max(float(np.abs(a - b).max()) for a, b in zip(before["float16"], after["float16"])),
            "softmax_programs": softmax_programs,
            "wrapped_once": not hasattr(nn.softmax.__wrapped__, "compiled"),
            "trained": bool(np.isfinite(loss)),
        }))
    """, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    assert results["float32"] < 1e-5
    assert results["float16"] < 1e-2
    assert results["softmax_programs"] == 1
    assert results["wrapped_once"] and results["trained"]


def test_initializers_in_numpy_fill_keras_own_weights_with_no_program():
    """Zeros and ones filled in NumPy are Keras' own, in every dtype (bfloat16 by Keras), and so are
    the weights and outputs of layers built with them, traced or not; a bias or LayerNorm of a new
    shape lowers no program to fill; a second call wraps nothing twice."""
    results = run_python("""
        import json
        import numpy as np
        import jax, jax.monitoring, keras
        from keras.src.initializers import constant_initializers
        from grader.compilation import initializers_in_numpy

        x = np.random.default_rng(0).normal(size=(2, 5, 7)).astype("float32")
        def everything():
            keras.utils.set_random_seed(1)
            layers = [keras.layers.Dense(4), keras.layers.Dense(4, bias_initializer="ones"),
                      keras.layers.LayerNormalization()]
            outputs = [np.asarray(layer(x)) for layer in layers]
            weights = [np.asarray(weight) for layer in layers for weight in layer.weights]
            jitted = jax.jit(lambda v: layers[2](v))(x)
            constants = [np.asarray(initializer()((2, 3), dtype), "float32") for initializer in
                         (keras.initializers.Zeros, keras.initializers.Ones)
                         for dtype in ("float32", "float16", "int32", "bool", "bfloat16")]
            dtypes = [str(keras.initializers.Ones()((2,), dtype).dtype) for dtype in ("float16", "bfloat16", "int32")]
            return outputs + weights + [np.asarray(jitted)] + constants, dtypes
        lowered = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, seconds, **_: lowered.append(event) if event.endswith("jaxpr_to_mlir_module_duration") else None)
        def programs_to_fill(width):
            lowered.clear()
            keras.initializers.Zeros()((width,))
            keras.initializers.Ones()((width, 2))
            return len(lowered)
        (before, dtypes_before), programs_before = everything(), programs_to_fill(9)
        initializers_in_numpy()
        initializers_in_numpy()
        (after, dtypes_after), programs_after = everything(), programs_to_fill(11)
        print(json.dumps({
            "same": all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(before, after)),
            "dtypes": dtypes_before == dtypes_after,
            "programs": [programs_before, programs_after],
            "wrapped_once": not hasattr(constant_initializers.Zeros.__call__.__wrapped__, "filled_with"),
        }))
    """, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    assert results == {"same": True, "dtypes": True, "programs": [2, 0], "wrapped_once": True}


def test_arrays_from_the_wire_become_tensors_without_a_program_per_shape():
    """On JAX, `grader.wire.as_tensor` compiles nothing for a new shape, where Keras' own dtype
    inference compiles one each."""
    results = run_python("""
        import json
        import numpy as np
        import jax.monitoring, keras
        from grader.wire import as_tensor

        lowered = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, seconds, **_: lowered.append(event) if event.endswith("jaxpr_to_mlir_module_duration") else None)
        keras.ops.convert_to_tensor(np.zeros(1, "float32"))
        lowered.clear()
        for n in range(1, 6):
            for dtype in ("float32", "float16", "int32", "bool", "uint8"):
                as_tensor(np.zeros((n, 3), dtype))
        ours = len(lowered)
        for n in range(1, 6):
            keras.ops.convert_to_tensor(np.zeros((n, 4), "float32"))
        print(json.dumps({"ours": ours, "keras": len(lowered) - ours}))
    """, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    assert results == {"ours": 0, "keras": 5}


@pytest.mark.parametrize("backend", ["jax", "torch", "tensorflow"])
def test_arrays_from_the_wire_keep_the_dtype_keras_gives_them(backend):
    """Arrays, NumPy scalars, Python numbers and lists become tensors of the dtype and values
    `keras.ops.convert_to_tensor` gives them, on every backend."""
    results = run_python("""
        import json
        import numpy as np
        import keras
        from grader.wire import as_tensor

        values = [(np.arange(6).reshape(2, 3) % 3).astype(dtype) for dtype in
                  ("float32", "float16", "int32", "uint8", "bool", "float64", "int64")]
        values += [np.float32(2.5), np.int64(3), 3, 2.5, True, [[1, 2], [3, 4]], [0.5, 1.5]]
        def described(tensor):
            return [keras.backend.standardize_dtype(tensor.dtype), np.asarray(keras.ops.convert_to_numpy(tensor)).tolist()]
        print(json.dumps({"same": [described(as_tensor(value)) == described(keras.ops.convert_to_tensor(value))
                                   for value in values]}))
    """, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    assert all(results["same"]), results
