"""`keras-tx` starts fast and quiet: arguments are read before a backend loads, and only the chosen one loads.

Each case runs the command in a fresh Python process and reports which
backend modules that process imported, so the check does not depend on how
busy the machine is.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.course

BACKEND_MODULES = ("keras", "tensorflow", "torch", "jax")

PROBE = """
import json, sys
from keras_tx_tools.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exit:
    status = exit.code
print(json.dumps({"status": status, "loaded": [m for m in %r if m in sys.modules]}))
""" % (BACKEND_MODULES,)


def _probe(argv, cwd=None):
    """`(report, stderr)` of `keras-tx ARGV` run by a fresh interpreter, without KERAS_BACKEND or log settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("KERAS_BACKEND", "TF_"))}
    process = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    return json.loads(process.stdout.strip().splitlines()[-1]), process.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        [],
        ["train", "--help"],
        ["generate", "--help"],
        ["evaluate", "--help"],
        ["release", "--help"],
        ["grade-all", "--help"],
        ["attention", "--help"],
        ["params", "--help"],
        ["attention", "model.keras", "--checkpoint", "gpt2", "--prompt", "a"],
        ["train", "reverse", "--backend", "foo"],
        ["train", "riddle"],
        ["train", "reverse", "--epochs", "0"],
        ["generate", "model.keras"],
        ["bogus"],
        ["generate", "missing.keras", "--prompt", "a"],
        ["evaluate", "missing.keras"],
        ["train", "shakespeare-char", "--data", "missing.txt"],
    ],
)
def test_help_and_argument_errors_load_no_backend(argv):
    report, stderr = _probe(argv)
    assert report["status"] in (0, 2)
    assert report["loaded"] == [], f"keras-tx {' '.join(argv)} imported {report['loaded']}"
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A tiny reversal GPT, its tokenizer and metrics.json, saved as `keras-tx train reverse` saves them on JAX.

    The model is compiled as training compiles it there, with XLA
    (`jit_compile=True`), and saved with that choice in its config.
    """
    folder = tmp_path_factory.mktemp("run")
    script = (
        "import json, sys; from keras_tx import GPT; from keras_tx_tools.data import tokenizers\n"
        "tokenizer = tokenizers.CharTokenizer.from_text('0123|')\n"
        "model = GPT(tokenizer.vocab_size, max_length=5, embed_dim=8, num_heads=2, num_layers=1)\n"
        "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', jit_compile=True)\n"
        "model(tokenizer.encode('01|')[None])\n"
        "model.save(sys.argv[1] + '/model.keras'); tokenizers.save(tokenizer, sys.argv[1] + '/tokenizer.json')\n"
        "config = dict(vocab_size=4, half_length=2, batch_size=4, steps=1, epochs=1, num_validation=8, seed=0)\n"
        "open(sys.argv[1] + '/metrics.json', 'w').write(json.dumps({'task': 'reverse', 'config': config}))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(folder)], check=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    return folder


@pytest.mark.parametrize(
    "command", [["generate", "--prompt", "01", "--num-tokens", "3"], ["evaluate"]], ids=["generate", "evaluate"]
)
@pytest.mark.parametrize("backend", ["tensorflow", "torch", "jax"])
def test_only_the_chosen_backend_loads_and_it_prints_no_log_lines(backend, command, run_folder):
    """No log lines and no compiler warnings: on PyTorch, no `torch.compile` of a model saved with XLA."""
    name, *options = command
    argv = [name, str(run_folder / "model.keras"), *options, "--backend", backend]
    report, stderr = _probe(argv)
    assert report["status"] == 0, stderr[-3000:]
    # Keras 3 itself imports jax for its Orbax checkpoint callback whatever the backend.
    others = {"tensorflow", "torch"} - {backend}
    assert backend in report["loaded"] and not others & set(report["loaded"])
    assert stderr == ""


def test_verbose_leaves_the_backend_log_settings_alone(run_folder):
    argv = ["generate", str(run_folder / "model.keras"), "--prompt", "01", "--num-tokens", "3", "--backend", "tensorflow"]
    report, stderr = _probe([*argv, "--verbose"])
    assert report["status"] == 0
    assert "This TensorFlow binary is optimized" in stderr  # TensorFlow's cpu_feature_guard


def test_an_unknown_keras_backend_in_the_grader_is_one_line_naming_the_valid_ones():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": "pytorch"}
    process = subprocess.run([sys.executable, "-m", "pytest", "grader", "-p", "no:cacheprovider"], cwd=root, env=env,
                             capture_output=True, text=True, timeout=300)
    lines = [line for line in (process.stdout + process.stderr).splitlines() if line.strip()]
    assert lines == ["ERROR: KERAS_BACKEND=pytorch is not a Keras backend: use one of tensorflow, torch, jax "
                     "(or --backend NAME)"]
    assert process.returncode == 4  # pytest's usage error
