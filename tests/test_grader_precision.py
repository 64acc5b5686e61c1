"""While grading, float32 matmuls run at full precision on every backend, and the caller's own
settings come back afterwards (grading may run inside the caller's process)."""

import json

import keras

from grader.precision import FULL, float32_precision, full_float32_precision, set_float32_precision
from test_grader import grade, submission

REDUCED = {"torch": {"matmul": "high", "cudnn_tf32": True}, "jax": {"matmul": "bfloat16"},
           "tensorflow": {"tf32": True}}
"""A caller's reduced-precision settings, per backend."""

PROBE = '''
    import json
    import os

    from grader.precision import float32_precision

    with open(os.environ["PRECISION_PROBE"], "a") as probe:
        probe.write(json.dumps(float32_precision()) + "\\n")
'''


def test_a_graded_check_runs_at_full_precision_and_the_callers_settings_come_back(tmp_path, monkeypatch):
    backend = keras.backend.backend()
    probe = tmp_path / "probe.jsonl"
    monkeypatch.setenv("PRECISION_PROBE", str(probe))
    first_line = '    positions = ops.cast(ops.arange(length), "float32")[:, None]\n'
    folder = submission(tmp_path, {"positional_embedding.py": [(first_line, PROBE.lstrip("\n") + first_line)]})
    with full_float32_precision():  # gives the session's settings back at the end
        set_float32_precision(REDUCED[backend])
        grade(tmp_path, "--submission", str(folder), "-k", "sinusoidal_shape", exercises=["positional_embedding"])
        assert float32_precision() == REDUCED[backend]
    seen = [json.loads(line) for line in probe.read_text().splitlines()]
    assert seen and all(settings == FULL[backend] for settings in seen)
