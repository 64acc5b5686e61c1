"""The instructor's half of the grader: code that computes what the exercises ask.

The student release leaves this package out. It holds the exercises' computations in NumPy,
with the knobs that turn each into a known mistake (`algorithms`), and what every mistake
family computes on a case's inputs (`fingerprints`). The live reference (``solutions/``
present: ``pytest grader --solutions``, ``keras-tx grade-all``, the Gradescope autograder)
computes these fingerprints on the run's fresh draws; ``python -m grader.record_reference``
saves them on the fixed draws, and the release's grader compares with those recordings.
The shipped grader never imports this package except through the live reference.
"""
