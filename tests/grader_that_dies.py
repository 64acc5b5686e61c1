"""A stand-in for a warm grader of `keras_tx_tools.course.batch`: the hand-in named ``kills_*`` kills it.

Example::

    batch._grade_in_pools(students, 2, grader_that_dies.grade, grader_that_dies.warm_up)
"""

import os

from keras_tx_tools.course.batch import GRADED, StudentGrade


def warm_up():
    """Nothing to warm: the stand-in grades at once."""


def grade(student):
    """`student` graded at once, unless it is called ``kills_...``: then the grader's process dies."""
    if student.name.startswith("kills"):
        os._exit(1)
    return StudentGrade(student.name, GRADED)
