"""The verdict does not depend on the seed: every mistake of the grader's own table, graded on
ten seeds, passes and fails the same checks for the same points.

For speed the grader's checks are called in this process, with the fixtures the grader gives
them (`grader.reference.check_rngs`, `seed_keras`, a live reference per seed shared by every
mistake); the reversal check draws nothing from the seed and runs once per mistake.
"""

import functools
import importlib
import inspect
import types

import pytest

from grader.gradebook import EXERCISES
from grader.registry import COURSE
from grader.reference import LiveReference, check_rngs, seed_keras
from grader.submission import load_submission
from test_grader import ROOT, submission
from test_grader_variants import MISTAKES

SEEDS = range(1, 11)
SEED_FREE = ("student",), ("student", "graded")
"""A check whose only fixtures are the student's modules draws nothing from the seed."""


def checks(exercises):
    """``[(exercise, name, function, points)]``: the grader's checks of `exercises`."""
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


def points(function, students, exercise, name, seed, worth):
    """What the check `function` gives the `students`' module of `exercise` on `seed`: its points, 0 on failure."""
    arguments = {"student": students[exercise], "reference": functools.partial(reference(seed).cases, exercise),
                 "rngs": check_rngs(seed, name), "graded": types.SimpleNamespace(modules=students),
                 "request": None}
    seed_keras(seed, name)
    try:
        function(**{parameter: arguments[parameter] for parameter in inspect.signature(function).parameters})
    except Exception:
        return 0
    return worth


def graded_with(exercise):
    """`exercise` and the exercises whose checks use its code: those that depend on it, directly or not."""
    users = {exercise}
    for later in COURSE:  # in course order: a dependency comes before the exercises that use it
        if users & set(later.depends):
            users.add(later.name)
    return [name for name in EXERCISES if name in users]


@pytest.mark.slow
@pytest.mark.parametrize("mistake", MISTAKES)
def test_every_seed_gives_a_mistake_the_same_verdicts(mistake, tmp_path):
    file, patches, caught_by, _ = MISTAKES[mistake]
    exercises = graded_with(file.removesuffix(".py"))
    students = load_submission(submission(tmp_path, {file: patches}))
    by_seed = {seed: {} for seed in SEEDS}
    for exercise, name, function, worth in checks(exercises):
        seeds = SEEDS[:1] if tuple(inspect.signature(function).parameters) in SEED_FREE else SEEDS
        for seed in seeds:
            by_seed[seed][name] = points(function, students, exercise, name, seed, worth)
    first = by_seed[SEEDS[0]]
    assert first[caught_by] == 0
    for seed in SEEDS[1:]:
        differing = {name: (first[name], given) for name, given in by_seed[seed].items() if given != first[name]}
        assert not differing, f"seed {seed} gives other points than seed {SEEDS[0]}: {differing}"
