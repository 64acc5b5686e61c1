"""Tokenizers: text <-> integer token ids, saved beside the model as JSON.

A language model only ever sees integers. A tokenizer fixes the vocabulary
(the list of tokens; a token's id is its index in that list) and converts in
both directions. Two granularities are used in this package:

- `CharTokenizer`: one token per character, as in the Tiny Shakespeare
  lecture. Tiny vocabulary (65 characters), long sequences.
- `WordTokenizer`: `re.split(r"\\b", text)` cuts the text at every word
  boundary, so words, spaces and punctuation runs all become tokens and
  joining the tokens gives the text back exactly. The vocabulary keeps the
  most frequent tokens; the rest map to an unknown token.

Both are registered Keras-serializable objects, so
`keras.saving.serialize_keras_object` / `deserialize_keras_object` (and the
`save` / `load` helpers below) store them as a small JSON file that travels
with the saved model.

>>> tokenizer = CharTokenizer.from_text("hello world")
>>> tokenizer.decode(tokenizer.encode("hello"))
'hello'
>>> WordTokenizer.from_text("to be, or not to be", max_tokens=4).tokens("to be or")
['to', ' ', 'be', ' ', 'or']
"""

import collections
import json
import re

import keras
import numpy as np


class Tokenizer:
    """A fixed vocabulary of string tokens; subclasses say how text splits.

    Args:
        vocabulary: list of distinct tokens; a token's id is its index.
    """

    def __init__(self, vocabulary):
        vocabulary = list(vocabulary)
        if not vocabulary:
            raise ValueError("`vocabulary` must contain at least one token.")
        if len(set(vocabulary)) != len(vocabulary):
            duplicates = sorted(
                {token for token in vocabulary if vocabulary.count(token) > 1}
            )
            raise ValueError(
                f"`vocabulary` tokens must be distinct; repeated: {duplicates!r}."
            )
        self.vocabulary = vocabulary
        self._ids = {token: index for index, token in enumerate(vocabulary)}

    @property
    def vocab_size(self):
        return len(self.vocabulary)

    def tokens(self, text):
        """Splits `text` into a list of string tokens."""
        raise NotImplementedError

    def token_id(self, token):
        """The id of one token (subclasses decide what unknown tokens become)."""
        return self._ids[token]

    def encode(self, text):
        """Text -> int32 array of token ids."""
        return np.array(
            [self.token_id(token) for token in self.tokens(text)], dtype="int32"
        )

    def decode(self, token_ids):
        """Token ids (any integer sequence or array) -> text."""
        return "".join(self.vocabulary[i] for i in self.check_ids(token_ids))

    def check_ids(self, token_ids):
        """`token_ids` as a flat array, after checking they are in the vocabulary."""
        ids = np.asarray(token_ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"Token ids must be in [0, {self.vocab_size}); "
                f"received values from {ids.min()} to {ids.max()}."
            )
        return ids

    def get_config(self):
        return {"vocabulary": self.vocabulary}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_tx")
class CharTokenizer(Tokenizer):
    """One token per character; unknown characters are an error.

    >>> tokenizer = CharTokenizer.from_text("abracadabra")
    >>> tokenizer.vocabulary, tokenizer.encode("cab").tolist()
    (['a', 'b', 'c', 'd', 'r'], [2, 0, 1])
    """

    @classmethod
    def from_text(cls, text):
        """The sorted set of characters of `text` is the vocabulary."""
        return cls(sorted(set(text)))

    def tokens(self, text):
        return list(text)

    def token_id(self, token):
        if token not in self._ids:
            raise ValueError(
                f"Character {token!r} is not in the tokenizer's vocabulary of "
                f"{self.vocab_size} characters: {''.join(self.vocabulary)!r}."
            )
        return self._ids[token]


@keras.saving.register_keras_serializable(package="keras_tx")
class WordTokenizer(Tokenizer):
    """Words, spaces and punctuation split at `\\b`; rare tokens become unknown.

    Args:
        vocabulary: list of tokens; must contain `unknown_token`.
        unknown_token: stands in for every token outside the vocabulary.

    >>> tokenizer = WordTokenizer(["<unk>", "to", " ", "be"])
    >>> tokenizer.decode(tokenizer.encode("to be or"))
    'to be <unk>'
    """

    def __init__(self, vocabulary, unknown_token="<unk>"):
        super().__init__(vocabulary)
        if unknown_token not in self._ids:
            raise ValueError(
                f"`vocabulary` must contain `unknown_token` {unknown_token!r}."
            )
        self.unknown_token = unknown_token
        self.unknown_id = self._ids[unknown_token]

    @classmethod
    def from_text(cls, text, max_tokens=10_000, unknown_token="<unk>"):
        """Keeps the `max_tokens - 1` most frequent tokens of `text`, plus unknown.

        Ties in frequency are broken by first appearance, so the result does
        not depend on anything but the text.
        """
        if max_tokens < 2:
            raise ValueError(
                f"`max_tokens` must be at least 2 (unknown + one token); "
                f"received max_tokens={max_tokens}."
            )
        counts = collections.Counter(split_words(text))
        counts.pop(unknown_token, None)
        frequent = [token for token, _ in counts.most_common(max_tokens - 1)]
        return cls([unknown_token, *frequent], unknown_token=unknown_token)

    def tokens(self, text):
        return split_words(text)

    def token_id(self, token):
        return self._ids.get(token, self.unknown_id)

    def get_config(self):
        return {**super().get_config(), "unknown_token": self.unknown_token}


def split_words(text):
    """`re.split(r"\\b", text)` without the empty strings at the ends.

    >>> split_words("Who's there?")
    ['Who', "'", 's', ' ', 'there', '?']
    """
    return [token for token in re.split(r"\b", text) if token]


def save(tokenizer, path):
    """Writes `tokenizer` as Keras-serialized JSON to `path`."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(keras.saving.serialize_keras_object(tokenizer), file)


def load(path):
    """Reads a tokenizer written by `save`."""
    with open(path, encoding="utf-8") as file:
        return keras.saving.deserialize_keras_object(json.load(file))
