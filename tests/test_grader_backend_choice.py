"""`pytest grader` in an install without TensorFlow: the grader picks a backend that is installed."""

import json
import os
import subprocess
import sys

import pytest

from grader import backends

pytestmark = pytest.mark.course


@pytest.fixture
def keras_unimported(monkeypatch, tmp_path):
    """No Keras imported yet, no KERAS_BACKEND, and a Keras home of its own (`tmp_path`)."""
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return tmp_path


def _installed(monkeypatch, *names):
    monkeypatch.setattr(backends, "is_installed", lambda backend: backend in names)


def test_without_tensorflow_the_first_installed_backend_grades(keras_unimported, monkeypatch):
    _installed(monkeypatch, "jax")
    backends.choose_installed_backend()
    assert backends.os.environ["KERAS_BACKEND"] == "jax"


def test_an_installed_choice_is_kept(keras_unimported, monkeypatch):
    (keras_unimported / "keras.json").write_text(json.dumps({"backend": "torch"}))
    _installed(monkeypatch, "torch", "jax")
    backends.choose_installed_backend()
    assert "KERAS_BACKEND" not in backends.os.environ


def test_keras_default_from_its_config_is_replaced_when_missing(keras_unimported, monkeypatch):
    (keras_unimported / "keras.json").write_text(json.dumps({"backend": "tensorflow"}))
    _installed(monkeypatch, "torch", "jax")
    backends.choose_installed_backend()
    assert backends.os.environ["KERAS_BACKEND"] == "torch"


def test_a_backend_named_by_the_environment_is_left_to_keras(keras_unimported, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    _installed(monkeypatch, "jax")
    backends.choose_installed_backend()
    assert backends.os.environ["KERAS_BACKEND"] == "tensorflow"


@pytest.mark.parametrize("code", [
    "from keras_tx_tools import cli; assert cli.main(['params', '--preset', 'gpt2']) == 0",
    "from keras_tx_tools.data.shakespeare import tiny_shakespeare",
])
def test_the_tools_pick_an_installed_backend_too(code, tmp_path):
    """The learner's commands on an install without TensorFlow, Keras' default: no traceback."""
    blocked = "import sys; sys.modules['tensorflow'] = None\n"  # import tensorflow fails, find_spec gives None
    check = "\nimport keras; print(keras.backend.backend())"
    environment = {name: value for name, value in os.environ.items() if name != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", blocked + code + check], capture_output=True, text=True,
                            env=dict(environment, KERAS_HOME=str(tmp_path)), cwd=backends.ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] in ("torch", "jax")
