"""Tokenizers: round trips, unknown tokens, and saving beside a model."""

import keras
import numpy as np
import pytest

from keras_tx_tools.data import tokenizers
from keras_tx_tools.data.tokenizers import CharTokenizer, WordTokenizer, split_words

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


def test_char_round_trip_and_sorted_vocabulary():
    tokenizer = CharTokenizer.from_text(TEXT)
    assert tokenizer.vocabulary == sorted(set(TEXT))
    ids = tokenizer.encode(TEXT)
    assert ids.dtype == np.int32 and len(ids) == len(TEXT)
    assert tokenizer.decode(ids) == TEXT


def test_char_unknown_character_is_a_clear_error():
    tokenizer = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"Character 'z' is not in the tokenizer's vocabulary"):
        tokenizer.encode("abz")


def test_decode_rejects_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match=r"Token ids must be in \[0, 3\)"):
        CharTokenizer.from_text("abc").decode([0, 3])


def test_vocabulary_must_be_distinct_and_non_empty():
    with pytest.raises(ValueError, match="repeated: \\['a'\\]"):
        CharTokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match="at least one token"):
        CharTokenizer([])


def test_split_words_is_re_split_at_word_boundaries_without_empty_strings():
    assert split_words("Who's there?\n") == ["Who", "'", "s", " ", "there", "?\n"]
    assert "".join(split_words(TEXT)) == TEXT


def test_word_round_trip_when_every_token_is_in_the_vocabulary():
    tokenizer = WordTokenizer.from_text(TEXT, max_tokens=1000)
    assert tokenizer.decode(tokenizer.encode(TEXT)) == TEXT


def test_word_vocabulary_keeps_the_most_frequent_tokens_and_maps_the_rest_to_unknown():
    tokenizer = WordTokenizer.from_text("a b a c a b", max_tokens=3)
    # " " appears 5 times, "a" 3 times: they fill the 2 places beside <unk>.
    assert tokenizer.vocabulary == ["<unk>", " ", "a"]
    assert tokenizer.decode(tokenizer.encode("a b d")) == "a <unk> <unk>"
    with pytest.raises(ValueError, match="max_tokens"):
        WordTokenizer.from_text("a b", max_tokens=1)


@pytest.mark.parametrize(
    "tokenizer",
    [CharTokenizer.from_text(TEXT), WordTokenizer.from_text(TEXT, max_tokens=10, unknown_token="?")],
    ids=["char", "word"],
)
def test_saved_tokenizer_loads_with_the_same_vocabulary_and_encoding(tokenizer, tmp_path):
    tokenizers.save(tokenizer, tmp_path / "tokenizer.json")
    loaded = tokenizers.load(tmp_path / "tokenizer.json")
    assert type(loaded) is type(tokenizer)
    assert loaded.get_config() == tokenizer.get_config()
    np.testing.assert_array_equal(loaded.encode(TEXT), tokenizer.encode(TEXT))
    # The same object goes through Keras' own serialization registry.
    config = keras.saving.serialize_keras_object(tokenizer)
    assert config["registered_name"].startswith("keras_tx>")
