"""Grading of exercises/rms_norm.py (10 points)."""

import numpy as np
import pytest

from grader.checks import GradingFailure, check_shape, tensor, to_numpy
from grader.reference import check_matches, draw_distinct


def draw_vectors(rng, module):
    batch, length, width = draw_distinct(rng, (2, 5), (3, 8), (8, 17))
    return {"x": rng.normal(0, 3, (batch, length, width)).astype("float32"),
            "scale": rng.normal(1, 0.2, width).astype("float32")}


def run_rms_norm(module, inputs):
    return {"y": to_numpy(module.rms_norm(tensor(inputs["x"]), tensor(inputs["scale"])), "rms_norm")}


@pytest.mark.points(6)
def test_rms_norm_matches_reference(student, reference):
    for inputs, expected in reference("rms_norm", draw_vectors, run_rms_norm):
        actual = run_rms_norm(student, inputs)["y"]
        check_shape(actual, inputs["x"].shape, "rms_norm(x, scale)")
        check_matches(actual, expected["y"], "rms_norm(x, scale)")


@pytest.mark.points(4)
def test_rms_norm_ignores_the_length_of_its_input(student, rngs):
    """A property, checked without the reference: scaling a vector up does not change its output."""
    for rng in rngs:
        x = rng.normal(0, 1, (3, 8)).astype("float32")
        scale = np.ones(8, "float32")
        once = to_numpy(student.rms_norm(tensor(x), tensor(scale)), "rms_norm")
        tenfold = to_numpy(student.rms_norm(tensor(10 * x), tensor(scale)), "rms_norm")
        if not np.allclose(once, tenfold, rtol=1e-3, atol=1e-4):
            raise GradingFailure("rms_norm(10 * x) differs from rms_norm(x): divide by the root mean square "
                                 "over the last axis, keeping that axis")
