"""The grader's checks called in this process, with the fixtures the grader gives them.

Faster than a ``pytest grader`` run per hand-in: `grader.reference.check_rngs`, `seed_keras`
and a live reference per seed (shared by every hand-in) stand in for the plugin's fixtures,
and a failure becomes the `Feedback` the plugin would turn into the message.
"""

import functools
import importlib
import inspect

from grader.checks import failure_feedback
from grader.reference import LiveReference, check_rngs, seed_keras
from grader.submission import load_submission
from test_grader import ROOT


def checks(exercises):
    """``[(exercise, name, function, points)]``: the grader's checks of `exercises`, in the grader's order."""
    found = []
    for exercise in exercises:
        module = importlib.import_module(f"grader.test_{exercise}")
        for name, function in vars(module).items():
            if name.startswith("test_"):
                [points] = [mark.args[0] for mark in function.pytestmark if mark.name == "points"]
                found.append((exercise, name, function, points))
    return found


@functools.cache
def solutions():
    return {exercise: module._module for exercise, module in load_submission(ROOT / "solutions").items()}


@functools.cache
def reference(seed):
    return LiveReference(solutions(), seed)


def run_check(function, students, exercise, name, seed, against=None):
    """Run the check `function` (named `name`) of `exercise` on the `students` modules as the grader
    does on `seed`, with the live reference of `seed` or the reference `against`."""
    arguments = {"student": students[exercise], "students": students, "rngs": check_rngs(seed, name),
                 "reference": functools.partial((against or reference(seed)).cases, exercise),
                 "references": (against or reference(seed)).cases,
                 "request": None}  # pytest's own: a check that prints to the terminal takes it
    seed_keras(seed, name)
    function(**{parameter: arguments[parameter] for parameter in inspect.signature(function).parameters})


def first_failure(folder, exercise, seed=1):
    """``(check name, Feedback)`` of the first of `exercise`'s checks that fails on the files in
    `folder`, or None when every check passes."""
    students = load_submission(folder)
    for _, name, function, _ in checks([exercise]):
        try:
            run_check(function, students, exercise, name, seed)
        except Exception as error:
            return name, failure_feedback(error, folder)
    return None
