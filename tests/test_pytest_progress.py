"""`scripts/test-all-backends.sh` is never silent for long: a line on its terminal as each test file finishes."""

import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.course

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_each_finished_file_prints_one_line_while_the_output_goes_elsewhere(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    assert False\n")
    (tmp_path / "test_two.py").write_text(
        "import pytest\n\ndef test_c():\n    pass\n\n@pytest.mark.skip\ndef test_d():\n    pass\n"
    )
    read, write = os.pipe()
    env = {**os.environ, "TEST_PROGRESS_FD": str(write), "TEST_PROGRESS_LABEL": "demo",
           "PYTHONPATH": str(ROOT)}
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "scripts.pytest_progress", "-p", "no:cacheprovider", "-q", "."],
        cwd=tmp_path, env=env, pass_fds=[write], capture_output=True, text=True, timeout=120,
    )
    os.close(write)
    with os.fdopen(read) as progress:
        lines = progress.read().splitlines()
    assert [line.rsplit(" in ", 1)[0] for line in lines] == [
        "demo: test_one.py: 1 failed, 1 passed",
        "demo: test_two.py: 1 passed, 1 skipped",
    ]
    assert "1 failed, 2 passed, 1 skipped" in process.stdout  # the full report still goes to pytest's output


def test_the_script_loads_the_plugin_for_every_run():
    script = (ROOT / "scripts" / "test-all-backends.sh").read_text()
    assert script.count("python -m pytest -p scripts.pytest_progress") == 2
    assert "TEST_PROGRESS_FD=3" in script and "exec 3>&1" in script
