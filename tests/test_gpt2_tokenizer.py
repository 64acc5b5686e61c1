"""GPT2Tokenizer: a byte-level BPE trained here, saved as GPT-2 ships its tokenizer,
encodes exactly as `transformers`' GPT-2 tokenizers do."""

import numpy as np
import pytest
from hf_gpt2 import tiny_tokenizer
from transformers import GPT2Tokenizer as HFGPT2Tokenizer
from transformers import GPT2TokenizerFast

from keras_tx_tools.data import tokenizers
from keras_tx_tools.gpt2.tokenizer import GPT2Tokenizer

TEXTS = [
    "The cat sat on the mat.",
    "  two spaces, a tab\tand\nnew lines\n\n",
    "Unseen words: zebra, Ærøskøbing, 東京, 🍕!",
    "one document<|endoftext|>and the next",
    "",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer(folder)
    return folder


@pytest.mark.parametrize("reference_class", [HFGPT2Tokenizer, GPT2TokenizerFast], ids=["python", "rust"])
def test_ids_match_transformers_gpt2_tokenizers(folder, reference_class):
    tokenizer = GPT2Tokenizer.from_directory(folder)
    reference = reference_class(str(folder / "vocab.json"), str(folder / "merges.txt"))
    assert tokenizer.vocab_size == len(reference) > 256
    for text in TEXTS:
        ids = tokenizer.encode(text)
        assert ids.dtype == np.int32
        assert ids.tolist() == reference.encode(text), text
        assert tokenizer.decode(ids) == text
    assert tokenizer.tokens("The cat") == ["The", "Ġcat"]


def test_end_of_text_is_one_token(folder):
    tokenizer = GPT2Tokenizer.from_directory(folder)
    assert tokenizer.encode("<|endoftext|>").tolist() == [tokenizer.token_id("<|endoftext|>")]


def test_tokenizer_json_is_read_first(folder, tmp_path):
    GPT2TokenizerFast(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file() and not (tmp_path / "merges.txt").exists()
    from_json, from_files = GPT2Tokenizer.from_directory(tmp_path), GPT2Tokenizer.from_directory(folder)
    for text in TEXTS:
        assert from_json.encode(text).tolist() == from_files.encode(text).tolist()


def test_saved_beside_a_model_like_the_other_tokenizers(folder, tmp_path):
    tokenizer = GPT2Tokenizer.from_directory(folder)
    tokenizers.save(tokenizer, tmp_path / "tokenizer.json")
    loaded = tokenizers.load(tmp_path / "tokenizer.json")
    assert isinstance(loaded, GPT2Tokenizer)
    assert loaded.encode(TEXTS[2]).tolist() == tokenizer.encode(TEXTS[2]).tolist()


def test_clear_errors(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No tokenizer in .*: expected tokenizer.json, or vocab.json and merges.txt"):
        GPT2Tokenizer.from_directory(tmp_path)
    tokenizer = GPT2Tokenizer.from_directory(folder)
    with pytest.raises(ValueError, match=rf"Token ids must be in \[0, {tokenizer.vocab_size}\)"):
        tokenizer.decode([1, tokenizer.vocab_size])
