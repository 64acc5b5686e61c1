"""The tokenizer exercise's solution speaks GPT-2: with GPT-2's shipped files it gives GPT-2's ids.

`grader.test_tokenizer.GPT2_IDS` (what a student's encoder is graded against) is checked here
against the `tokenizers` library reading the same files.
"""

import pathlib

import pytest
from tokenizers import ByteLevelBPETokenizer

from grader.submission import load_submission
from grader.test_tokenizer import GPT2_IDS, GPT2_PARAGRAPH
from keras_tx_tools.gpt2.bpe_files import read_gpt2_bpe

pytestmark = pytest.mark.course
ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = ROOT / "datasets" / "gpt2"


@pytest.fixture(scope="module")
def gpt2():
    solution = load_submission(ROOT / "solutions")["tokenizer"]
    byte_ids, merges = read_gpt2_bpe(FILES)
    return solution.BytePairTokenizer(merges, byte_ids)


def test_the_graded_ids_are_the_tokenizers_librarys():
    library = ByteLevelBPETokenizer.from_file(str(FILES / "vocab.json"), str(FILES / "merges.txt"))
    assert library.encode(GPT2_PARAGRAPH).ids == GPT2_IDS


def test_the_solution_gives_gpt2s_ids(gpt2):
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.encode(GPT2_PARAGRAPH) == GPT2_IDS
    assert gpt2.decode(GPT2_IDS) == GPT2_PARAGRAPH


def test_gpt2s_files_are_read_as_byte_ids_and_merges_of_ids():
    byte_ids, merges = read_gpt2_bpe(FILES)
    assert sorted(byte_ids) == list(range(256))
    assert len(merges) == 50_000
    assert (byte_ids[ord("H")], merges[0]) == (39, (220, 83))  # merge 0 is " " + "t"


def test_a_missing_file_is_named(tmp_path):
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no merges.txt in"):
        read_gpt2_bpe(tmp_path)
