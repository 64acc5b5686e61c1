"""The course grader: run ``pytest grader`` from the repository root (see grader/README.md)."""
