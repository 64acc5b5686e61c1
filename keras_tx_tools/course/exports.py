"""Export a batch's grades for the instructor and the students: a CSV gradebook, one feedback
file per student, Gradescope JSON.

Students see their public tests in full — name, points and the grader's
message — but of a hidden test (see :func:`is_hidden`) only that it exists,
its points, whether it passed and, when it failed, the cause and fix the grader
named (its ``advice``, which never quotes a value): its name and message, which
could give the checked values away, stay in the instructor's logs (on
Gradescope, until the due date).

Example::

    grades = grade_all("submissions/", grading_root="release/", backend="jax")
    write_csv(grades, "grades.csv")
    write_feedback(grades, "feedback/")        # feedback/<student>.txt
    write_gradescope(grades, "gradescope/")    # gradescope/<student>/results.json
"""

import csv
import json
import pathlib

from keras_tx_tools.course.batch import ERROR, GRADED


HIDDEN_MARK = "matches_reference"
"""Tests named like this compare with the reference outputs: hidden unless the grader says otherwise."""


def is_hidden(test):
    """Whether a grader test result is hidden from students.

    The grader's own ``"hidden"`` flag decides when the report has one;
    otherwise the comparisons with the reference outputs (``*matches_reference*``)
    are hidden, as their messages quote the expected values.
    """
    return bool(test.get("hidden", HIDDEN_MARK in test["name"]))


def course_maxima(grades):
    """The maximum points of each exercise, read from the graded reports, in their order."""
    maxima = {}
    for grade in grades:
        for exercise, report in grade.exercises.items():
            maxima.setdefault(exercise, report["max"])
    return maxima


def write_csv(grades, path):
    """Write one row per student: points per exercise, total, maximum, status, whether the code
    ran isolated, forbidden imports and notes."""
    maxima = course_maxima(grades)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", *maxima, "total", "max", "status", "isolated", "forbidden_imports", "notes"])
        for grade in grades:
            writer.writerow(
                [
                    grade.student,
                    *(grade.points(exercise) for exercise in maxima),
                    grade.total,
                    sum(maxima.values()),
                    grade.status,
                    isolated(grade),
                    "; ".join(grade.findings),
                    grade.message,
                ]
            )


def feedback_text(grade):
    """The feedback a student may read about `grade` (hidden tests show no details)."""
    lines = [f"Feedback for {grade.student}", ""]
    if grade.status == ERROR:
        lines.append(f"GRADER ERROR, not your code's: this hand-in will be regraded ({grade.message})")
    elif grade.status != GRADED:
        lines.append(f"Not graded ({grade.status}): {grade.message}")
    else:
        if grade.message:
            lines += [f"Note: {grade.message}", ""]
        for exercise, report in grade.exercises.items():
            lines.append(f"{exercise}: {_number(report['points'])} / {_number(report['max'])}")
            lines += ["  " + _test_line(test) for test in report["tests"]]
            lines.append("")
        total = sum(report["max"] for report in grade.exercises.values())
        lines.append(f"Total: {_number(grade.total)} / {_number(total)}")
    if grade.findings:
        lines += ["", "Imports the course does not allow (reported to the instructor):"]
        lines += [f"  {finding}" for finding in grade.findings]
    return "\n".join(lines) + "\n"


def write_feedback(grades, folder):
    """Write ``<folder>/<student>.txt`` with `feedback_text` for every grade."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for grade in grades:
        (folder / f"{grade.student}.txt").write_text(feedback_text(grade), encoding="utf-8")


def gradescope_results(grade):
    """`grade` in Gradescope's autograder ``results.json`` format.

    Hidden tests get ``"visibility": "after_due_date"``: students see their name and
    output only once the due date has passed; before, the result's own output lists each one
    that failed with its points and the grader's advice (`_test_line`). A hand-in the grader
    failed on (`ERROR`) says so first in its output, for the instructor to regrade.
    """
    tests, hidden_failures = [], []
    for exercise, report in grade.exercises.items():
        for test in report["tests"]:
            if is_hidden(test) and not _passed(test):
                hidden_failures.append(f"{exercise}: {_test_line(test)}")
            tests.append(
                {
                    "name": f"{exercise}: {test['name']}",
                    "score": test["points"],
                    "max_score": test["max"],
                    "status": "passed" if _passed(test) else "failed",
                    "output": test.get("message", ""),
                    "visibility": "after_due_date" if is_hidden(test) else "visible",
                }
            )
    output = "\n".join([grade.message or "", *hidden_failures]).strip()
    if grade.status == ERROR:
        output = f"GRADER ERROR, not your code's: this hand-in will be regraded. {output}"
    return {
        "score": grade.total,
        "output": output,
        "tests": tests,
    }


def write_gradescope(grades, folder):
    """Write ``<folder>/<student>/results.json`` for every grade."""
    for grade in grades:
        path = pathlib.Path(folder) / grade.student / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(gradescope_results(grade), indent=2), encoding="utf-8")


def isolated(grade):
    """``yes`` when the student's code ran sandboxed, ``NO`` when it ran without, empty when unknown."""
    if not grade.isolation:
        return ""
    return "yes" if grade.isolation.startswith("sandboxed") else "NO"


def _passed(test):
    """Whether a grader test result earned all its points."""
    return test["points"] >= test["max"]


def _test_line(test):
    """One feedback line for a grader test result: verdict, name, points, and what went wrong."""
    verdict = "passed" if _passed(test) else test.get("outcome", "failed")
    score = f"{_number(test['points'])} / {_number(test['max'])}"
    if is_hidden(test):
        advice = "" if _passed(test) else test.get("advice") or ""
        return f"[{verdict}] hidden test ({score})" + (f": {advice}" if advice else "")
    message = "" if _passed(test) else test.get("message") or ""
    return f"[{verdict}] {test['name']} ({score})" + (f": {message}" if message else "")


def _number(value):
    """Points without a trailing ``.0``."""
    return f"{value:g}"
