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


def test_fast_compilation_adds_its_flag_and_keeps_a_chosen_level():
    code = """
        import json, os
        from grader.compilation import prefer_fast_compilation
        prefer_fast_compilation()
        print(json.dumps(os.environ["XLA_FLAGS"]))
    """
    assert run_python(code, XLA_FLAGS="--xla_cpu_enable_fast_math=false") == (
        "--xla_cpu_enable_fast_math=false --xla_backend_optimization_level=0")
    assert run_python(code, XLA_FLAGS="--xla_backend_optimization_level=2") == "--xla_backend_optimization_level=2"


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
