"""The README is a front door: short, its two commands the ones CI and the student release use, no diary."""

import pathlib
import re

import pytest

pytestmark = pytest.mark.course

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = [line for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL) for line in block.splitlines()]


def test_the_readme_is_short_and_states_facts_without_a_diary():
    assert len(README.splitlines()) <= 150
    for diary in ("pending", "not yet", "yet to", "TODO"):
        assert diary not in README, diary
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", README), "dated figures live in docs/results.md and benchmarks/RESULTS.md"


def test_its_first_command_installs_the_student_extra_and_grades():
    assert COMMANDS[0].endswith('pip install -e ".[student]" && pytest grader')


def test_its_second_command_runs_the_test_command_that_ci_runs():
    assert COMMANDS[1].endswith('pip install -e ".[all,test]" && bash scripts/test-all-backends.sh')
    assert "--index-url https://download.pytorch.org/whl/cpu" in COMMANDS[1]
    assert re.search(r"^bash scripts/test-all-backends.sh\b", (ROOT / ".ci" / "run").read_text(encoding="utf-8"), re.MULTILINE)


def test_its_links_lead_to_files_of_the_repository():
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link
