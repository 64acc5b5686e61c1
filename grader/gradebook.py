"""Points per test, the score table and the ``--grade-json`` report.

The grader fills a `Gradebook` from its own records of each test's outcome and the points
its ``@pytest.mark.points(n)`` marker carries, never from anything printed while grading.

Example::

    book = Gradebook(backend="jax", seed=7, reference="live, from the solutions")
    book.add("masking", "test_causal_mask", 5, "passed")
    print("\\n".join(book.table()))
"""

import dataclasses

from grader.registry import COURSE

EXERCISES = COURSE.names
"""The exercises' names in the order of the course (`grader.registry` holds the course), given ones included."""

PASSED, FAILED, NOT_ATTEMPTED, ERROR = "passed", "failed", "not attempted", "error"
"""A test's outcomes; `ERROR`: the grader could not run it, so it says nothing of the student's work."""


@dataclasses.dataclass
class TestResult:
    """One graded test: its name, its worth, how it went and what to do about it."""

    name: str
    max: float
    outcome: str
    message: str = ""
    advice: str = ""  # the message's cause and fix alone (`Feedback.why`): what a hidden check may show

    @property
    def points(self):
        return self.max if self.outcome == PASSED else 0


class Gradebook:
    """The results of one grading run on one backend."""

    def __init__(self, backend, seed, reference, hints="full"):
        self.backend = backend
        self.seed = seed
        self.reference = reference
        self.hints = hints
        self.isolation = "none: the submission ran in the grader's process"
        self.out_of_time = False
        self.student_seconds = None  # with --isolate: {"wall", "cpu"} seconds of the submission's process
        self.results = {}

    def add(self, exercise, name, points, outcome, message="", advice=""):
        self.results.setdefault(exercise, []).append(TestResult(name, points, outcome, message, advice))

    def report(self):
        """The ``--grade-json`` report (see grader/README.md)."""
        exercises = {}
        for exercise in [name for name in EXERCISES if name in self.results]:
            tests = self.results[exercise]
            exercises[exercise] = {
                "points": sum(test.points for test in tests),
                "max": sum(test.max for test in tests),
                "tests": [
                    {"name": test.name, "points": test.points, "max": test.max, "outcome": test.outcome,
                     "message": test.message, "advice": test.advice}
                    for test in tests
                ],
            }
        return {
            "backend": self.backend,
            "seed": self.seed,
            "reference": self.reference,
            "hints": self.hints,
            "isolation": self.isolation,
            "out_of_time": self.out_of_time,
            "student_seconds": self.student_seconds,
            "total": sum(result["points"] for result in exercises.values()),
            "max": sum(result["max"] for result in exercises.values()),
            "exercises": exercises,
        }

    def table(self):
        """The score table, as lines of text."""
        return report_table(self.report())


def report_table(report):
    """Lines of the score table of one backend's report: points, what failed, the total."""
    lines = [f"backend {report['backend']}, seed {report['seed']}, reference {report['reference']}"
             + (f", hints {report['hints']}" if report.get("hints", "full") != "full" else "")]
    for exercise, result in report["exercises"].items():
        tests = result["tests"]
        lines.append(f"{exercise:<22}{_points(result['points'], result['max']):>9}")
        if tests and all(test["outcome"] == NOT_ATTEMPTED for test in tests):
            lines[-1] += "   not attempted yet"
            continue
        failed = [test for test in tests if test["outcome"] != PASSED]
        if len(failed) > 1 and len({test["message"] for test in failed}) == 1:
            lines.append(f"    every failed check: {failed[0]['message']}")  # a file that does not load, say
        else:
            lines += [f"    {test['name']}: {test['message'] or test['outcome']}" for test in failed]
    lines.append(f"{'total':<22}{_points(report['total'], report['max']):>9}")
    return lines


def matrix_table(reports):
    """Lines of the score matrix of several backends: ``{backend: report or None (crashed)}``."""
    backends = list(reports)
    lines = [f"{'exercise':<22}" + "".join(f"{backend:>13}" for backend in backends)]
    for row in [*COURSE.graded, "total"]:
        cells = []
        for report in reports.values():
            if report is None:
                cells.append("error")
            elif row == "total":
                cells.append(_points(report["total"], report["max"]))
            elif row in report["exercises"]:
                cells.append(_points(report["exercises"][row]["points"], report["exercises"][row]["max"]))
            else:
                cells.append("-")
        lines.append(f"{row:<22}" + "".join(f"{cell:>13}" for cell in cells))
    return lines


def _points(points, maximum):
    return f"{points:g}/{maximum:g}"
