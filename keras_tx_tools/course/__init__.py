"""Course tooling: student stubs, the student release, nbgrader notebooks and batch grading."""
