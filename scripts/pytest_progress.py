"""A pytest plugin: one line on the terminal as each test file finishes, while the full output goes to a log.

`scripts/test-all-backends.sh` sends each pytest run's output to its log
under `runs/tests/` and loads this plugin (`-p scripts.pytest_progress`)
with `TEST_PROGRESS_FD`, a file descriptor of its own terminal, and
`TEST_PROGRESS_LABEL`, the run's name. Each finished file then prints, e.g.

    KERAS_BACKEND=torch: tests/test_cli.py: 31 passed in 84 s

Without `TEST_PROGRESS_FD` the plugin does nothing.
"""

import collections
import os
import time

import pytest


def pytest_configure(config):
    descriptor = os.environ.get("TEST_PROGRESS_FD")
    if descriptor:
        config.pluginmanager.register(FileProgress(int(descriptor), os.environ.get("TEST_PROGRESS_LABEL", "")))


class FileProgress:
    """Counts the outcomes of each file's tests and writes its line when its last test has run."""

    def __init__(self, descriptor, label):
        self.descriptor = descriptor
        self.prefix = f"{label}: " if label else ""
        self.outcomes = collections.Counter()
        self.started = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        if self.started is None:
            self.started = time.perf_counter()
        yield
        if nextitem is None or nextitem.path != item.path:
            counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.outcomes.items()))
            seconds = time.perf_counter() - self.started
            os.write(self.descriptor, f"{self.prefix}{item.location[0]}: {counts} in {seconds:.0f} s\n".encode())
            self.outcomes.clear()
            self.started = None

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":  # a failed or skipped setup counts too
            self.outcomes["error" if report.failed and report.when != "call" else report.outcome] += 1
