"""Every name and constant the grader requires is stated in the lesson of its exercise."""

import ast
import pathlib

import pytest

from grader.layout import lesson_contract

ROOT = pathlib.Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.course


@pytest.mark.parametrize("exercise", sorted(lesson_contract()))
def test_the_lesson_states_the_whole_contract(exercise):
    lesson = " ".join(ast.get_docstring(ast.parse((ROOT / "exercises" / f"{exercise}.py").read_text())).split())
    missing = [phrase for phrase in lesson_contract()[exercise] if phrase not in lesson]
    assert not missing, f"the lesson of exercises/{exercise}.py does not state {missing}"


def test_the_contract_covers_every_sublayer_and_constant():
    contract = lesson_contract()
    assert {"``embedding``", "``blocks``", "``final_norm``", "``lm_head``", "``norm1``", "``ffn_in``",
            "epsilon=1e-5", 'activation="gelu"'} <= set(contract["model"])
    assert {"``query_dense``", "returns only the output", "softmax in float32"} <= set(contract["attention"])
