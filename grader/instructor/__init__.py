"""The instructor's half of the grader: code that computes what an exercise asks.

Drawing inputs with the margins a check needs, and recomputing an exercise's algorithm to do
so, takes code that would answer the exercise. It lives here, and the student release leaves
this package out: there the grader reads the recorded cases (`grader.reference`) instead, and
never calls anything in here.
"""
