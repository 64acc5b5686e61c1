"""Local grading where Linux's process tools are missing (macOS lacks none of these; Windows lacks all).

`pytest grader` must grade without the `resource` module, without `os.fork` and without
`signal.SIGALRM`/`setitimer`: a check then runs without its time limit, and nothing else
changes. (The sandbox of ``--isolate`` and ``grade-all`` needs them, and bubblewrap: Linux only.)
The grader runs in a process of its own from which they have been removed before it starts.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.course, pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parents[1]

WITHOUT_POSIX_TOOLS = """
import os, signal, sys
for name in ("SIGALRM", "setitimer", "ITIMER_REAL"):
    delattr(signal, name)
del os.fork
sys.modules["resource"] = None  # `import resource` now fails, as on Windows
import pytest
sys.exit(pytest.main(["grader/test_masking.py", "--solutions", "--seed", "1", "--grade-json", sys.argv[1],
                      "-q", "-p", "no:cacheprovider"]))
"""


def test_the_grader_grades_without_resource_fork_or_sigalrm(tmp_path):
    report = tmp_path / "grade.json"
    process = subprocess.run([sys.executable, "-c", WITHOUT_POSIX_TOOLS, str(report)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "KERAS_BACKEND": "torch"})
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    grades = json.loads(report.read_text())
    assert grades["exercises"]["masking"]["points"] == grades["exercises"]["masking"]["max"] > 0
