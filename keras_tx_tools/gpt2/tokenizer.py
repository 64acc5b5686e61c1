"""GPT-2's tokenizer: byte-level byte-pair encoding (BPE), read from a checkpoint folder.

Characters make sequences long; words make the vocabulary huge and leave
unknown words. BPE sits between: it starts from single symbols and learns,
from a corpus, which adjacent pair to merge into a new token, most frequent
first ("t" + "h" -> "th", "th" + "e" -> "the", ...). Frequent words end up as
one token, rare ones as a few pieces, and nothing is ever unknown.

GPT-2 runs BPE on the text's UTF-8 **bytes**, each shown as a printable
character (a space is ``Ġ``), so any text -- emoji included -- has an
encoding. Its vocabulary of 50,257 tokens is 256 bytes, 50,000 merges and
``<|endoftext|>``, which separates documents. A checkpoint stores them as
``vocab.json`` (token -> id) and ``merges.txt`` (the merges in order), or
both in one ``tokenizer.json``; the `tokenizers` library applies them.

>>> import tempfile
>>> from tokenizers import ByteLevelBPETokenizer
>>> trained = ByteLevelBPETokenizer()
>>> trained.train_from_iterator(["the cat sat on the mat"] * 10, vocab_size=270, show_progress=False)
>>> folder = tempfile.mkdtemp()
>>> _ = trained.save_model(folder)  # vocab.json and merges.txt, as GPT-2 ships them
>>> tokenizer = GPT2Tokenizer.from_directory(folder)
>>> tokenizer.tokens("the cat sat")
['the', 'Ġcat', 'Ġsat']
>>> tokenizer.decode(tokenizer.encode("the cat ate 🍕"))
'the cat ate 🍕'
"""

import pathlib

import keras
import numpy as np

from keras_tx_tools.data.tokenizers import Tokenizer

END_OF_TEXT = "<|endoftext|>"


@keras.saving.register_keras_serializable(package="keras_tx")
class GPT2Tokenizer(Tokenizer):
    """Byte-level BPE with the interface of the package's tokenizers.

    `tokens` returns the byte-level pieces (``"Ġcat"`` for `` cat``);
    `encode` and `decode` convert text and ids, ``<|endoftext|>`` included.

    Args:
        tokenizer_json: the tokenizer as the `tokenizers` library serialises
            it (the content of a ``tokenizer.json``).
    """

    def __init__(self, tokenizer_json):
        from tokenizers import Tokenizer as BytePairEncoding

        self.tokenizer_json = tokenizer_json
        self.encoding = BytePairEncoding.from_str(tokenizer_json)
        vocabulary = self.encoding.get_vocab(with_added_tokens=True)
        ordered = sorted(vocabulary, key=vocabulary.get)
        if [vocabulary[token] for token in ordered] != list(range(len(ordered))):
            raise ValueError("The tokenizer's ids must be 0, 1, ..., vocab_size - 1 without gaps.")
        super().__init__(ordered)

    @classmethod
    def from_directory(cls, directory):
        """Reads ``tokenizer.json``, or else ``vocab.json`` and ``merges.txt``, from `directory`."""
        from tokenizers import ByteLevelBPETokenizer

        directory = pathlib.Path(directory)
        if (directory / "tokenizer.json").is_file():
            return cls((directory / "tokenizer.json").read_text(encoding="utf-8"))
        vocab, merges = directory / "vocab.json", directory / "merges.txt"
        if not (vocab.is_file() and merges.is_file()):
            raise FileNotFoundError(
                f"No tokenizer in {directory}: expected tokenizer.json, or vocab.json and merges.txt."
            )
        encoding = ByteLevelBPETokenizer.from_file(str(vocab), str(merges))
        if encoding.token_to_id(END_OF_TEXT) is not None:
            encoding.add_special_tokens([END_OF_TEXT])  # one token, never split into bytes
        return cls(encoding._tokenizer.to_str())

    def tokens(self, text):
        return self.encoding.encode(text).tokens

    def encode(self, text):
        return np.array(self.encoding.encode(text).ids, dtype="int32")

    def decode(self, token_ids):
        return self.encoding.decode(self.check_ids(token_ids).tolist(), skip_special_tokens=False)

    def get_config(self):
        return {"tokenizer_json": self.tokenizer_json}
