"""The closing summary of a batch: how many were graded, and how the scores fall.

Example:

>>> from keras_tx_tools.course.batch import StudentGrade
>>> grades = [
...     StudentGrade("ada", "graded", {"attention": {"points": 8, "max": 10, "tests": []}}),
...     StudentGrade("bob", "timeout"),
... ]
>>> print(summarize(grades, max_points=10))
2 submissions: 1 graded, 0 failed to run, 1 timed out
score      students
  0- 9%    1 #
 10-19%    0
 20-29%    0
 30-39%    0
 40-49%    0
 50-59%    0
 60-69%    0
 70-79%    0
 80-89%    1 #
 90-100%   0
"""

from keras_tx_tools.course.batch import ERROR, FAILED, GRADED, TIMEOUT

BINS = 10
"""Score histogram bins, each covering a tenth of the maximum (the last includes 100%)."""


def score_counts(grades, max_points):
    """How many grades fall in each tenth of `max_points` (ungraded ones score 0)."""
    if not max_points > 0:
        raise ValueError(f"max_points must be positive, got {max_points!r}")
    counts = [0] * BINS
    for grade in grades:
        counts[min(int(BINS * grade.total / max_points), BINS - 1)] += 1
    return counts


def summarize(grades, max_points):
    """A text summary: counts by status, then a score histogram drawn with ``#``."""
    statuses = [grade.status for grade in grades]
    lines = [
        f"{len(grades)} submissions: {statuses.count(GRADED)} graded, "
        f"{statuses.count(FAILED)} failed to run, {statuses.count(TIMEOUT)} timed out"
        + (f", {statuses.count(ERROR)} not graded for the grader's own failure (regrade them)" if ERROR in statuses else ""),
        "score      students",
    ]
    for index, count in enumerate(score_counts(grades, max_points)):
        low, high = 10 * index, 10 * index + 9 + (index == BINS - 1)
        lines.append(f"{f'{low:>3}-{high:>2}%':<9}{count:>3} {'#' * count}".rstrip())
    return "\n".join(lines)


def plot_histogram(grades, max_points, path):
    """Save the score histogram of `grades` as an image (PNG for a ``.png`` `path`)."""
    from matplotlib.figure import Figure  # draws off-screen; needs no display or pyplot state

    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    labels = [f"{10 * index}%" for index in range(BINS)]
    axes.bar(labels, score_counts(grades, max_points), align="edge", width=0.9)
    axes.set_xlabel("score (bins of 10% of the maximum)")
    axes.set_ylabel("students")
    axes.set_title(f"{len(grades)} submissions")
    axes.yaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    figure.savefig(path)
