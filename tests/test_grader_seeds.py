"""The verdict does not depend on the seed: every mistake of the grader's own table, graded on
ten seeds, passes and fails the same checks for the same points, in its own exercise and in
every exercise that uses it, and its exercise's first failed check names the same cause.

For speed the grader's checks are called in this process (`in_process_grading`); the checks
whose only fixture is the student's module draw nothing from the seed and run once per mistake.
"""

import inspect

import keras

import pytest

from grader.checks import failure_feedback
from grader.registry import COURSE
from grader.submission import load_submission
from in_process_grading import checks, run_check
from test_grader import submission
from test_grader_variants import MISTAKES, representatives

SEEDS = range(1, 11)
SEED_FREE = ("student",), ("student", "students"), ("student", "request")
"""A check whose only fixtures are the student's modules draws nothing from the seed."""


WITH_USERS = ", and the exercises that use it"
SEEDED = [*MISTAKES, *(f"{mistake}{WITH_USERS}" for mistake in representatives(2))] \
    if keras.backend.backend() == "torch" else representatives(1)
"""On PyTorch, the fastest backend here: every mistake in its own exercise, and two per exercise
in the exercises that use it too; on the others one per exercise, in its own. (The inputs are drawn
by NumPy, the same on every backend; the in-process table, `test_grader_variants`, grades every
mistake on every backend on one seed.)"""


@pytest.mark.slow
@pytest.mark.parametrize("case", SEEDED)
def test_every_seed_gives_a_mistake_the_same_verdicts(case, tmp_path):
    mistake = case.removesuffix(WITH_USERS)
    file, patches, caught_by, _ = MISTAKES[mistake]
    exercise = file.removesuffix(".py")
    exercises = graded_with(exercise) if case.endswith(WITH_USERS) else [exercise]
    folder = submission(tmp_path, {file: patches})
    students = load_submission(folder)
    by_seed = {seed: {} for seed in SEEDS}
    causes = {}  # seed -> (check, cause) of the exercise's first failed check
    for checked, name, function, worth in checks(exercises):
        seed_free = tuple(inspect.signature(function).parameters) in SEED_FREE
        outcome = None
        for seed in SEEDS:
            if outcome is None or not seed_free:
                outcome = grade(function, students, checked, name, seed, worth, folder)
            by_seed[seed][name], cause = outcome
            if checked == exercise and cause is not None:
                causes.setdefault(seed, (name, cause))
    first = by_seed[SEEDS[0]]
    assert first[caught_by] == 0 and causes[SEEDS[0]][0] == caught_by
    for seed in SEEDS[1:]:
        differing = {name: (first[name], given) for name, given in by_seed[seed].items() if given != first[name]}
        assert not differing, f"seed {seed} gives other points than seed {SEEDS[0]}: {differing}"
    assert len(set(causes.values())) == 1, f"the first failed check names other causes on other seeds: {causes}"


def graded_with(exercise):
    """`exercise` and the exercises whose checks use its code: those that depend on it, directly or not."""
    users = {exercise}
    for later in COURSE:  # in course order: a dependency comes before the exercises that use it
        if users & set(later.depends):
            users.add(later.name)
    return [name for name in COURSE.names if name in users]


def grade(function, students, exercise, name, seed, worth, folder):
    """``(points, the cause its failure names or "" when none)`` of one check on one seed."""
    try:
        run_check(function, students, exercise, name, seed)
    except Exception as error:
        return 0, failure_feedback(error, folder).cause or ""
    return worth, None
