"""Shared fixtures for the project's own tests (run once per Keras backend)."""

import os
import tempfile

import keras
import numpy as np
import pytest

collect_ignore = ["data"]
"""Files the tests use (a custom exercise's checks among them), not tests of this project."""

# JAX's compilations while grading are cached here, not in the user's cache (grader/compilation.py).
os.environ.setdefault("KERAS_TX_JAX_CACHE", os.path.join(tempfile.gettempdir(), "keras-tx-tests-jax-cache"))


def pytest_collection_modifyitems(config, items):
    """Leave out the tests marked ``backend(name)`` unless this run's backend is `name`: they test a
    tool that runs on that backend whatever the run's, so one run of the test suffices."""
    backend = keras.backend.backend()
    other = [item for item in items
             if (marker := item.get_closest_marker("backend")) and marker.args[0] != backend]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if item not in other]


@pytest.fixture(autouse=True, scope="session")
def _full_float32_precision():
    """Float32 means float32: no reduced-precision (TF32-class) matmuls on any device."""
    from grader.precision import full_float32_precision

    with full_float32_precision():
        yield


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts from the default float32 policy and a fixed seed."""
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_dtype_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def backend_env():
    """The environment for a subprocess, minus the current process's backend choice."""
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    return env
