"""Exercise 0: text to tokens, with byte-level byte-pair encoding (BPE).

Lesson
======

1. Bytes, not characters
------------------------
A model reads token ids, so text must first be cut into tokens and numbered. Characters give
long sequences; whole words give a huge vocabulary and leave every unseen word unknown. BPE sits
between: it starts from the smallest pieces and learns, from a corpus, which neighbours to glue
into a new token, most frequent first ("t" + "h" -> "th", "th" + "e" -> "the"). Frequent words
end up as one token, rare ones as a few pieces.

Byte-level BPE (GPT-2's) starts from the 256 possible **bytes** of the text's UTF-8 encoding,
not from characters: "é" is two bytes, an emoji four. Every string, in any script, is some
sequence of bytes, so nothing is ever unknown and ``decode(encode(text)) == text`` always. Token
ids: byte ``b`` is token ``b`` (0 to 255) and the token made by merge ``i`` is ``256 + i``.

2. Pre-tokens: merges never cross a word's edge
-----------------------------------------------
Before counting anything, the text is split into *pre-tokens* with a regular expression: a word
with the space before it (" cat"), a run of digits, a run of punctuation, whitespace. Merges are
learnt and applied inside each pre-token only. Without this split, the most frequent pairs of a
text include pairs that straddle two words ("e" + " " at the end of "the", "." + " " after a
sentence), and the vocabulary fills with accidental neighbours such as "dog." and "dog!" as
tokens of their own instead of "dog" once. Splitting also makes training fast: a text of a
million pre-tokens has only tens of thousands of distinct ones, each counted once with its
frequency. `PATTERN` is GPT-2's pre-tokenisation rule (section 6 says where it comes from)::

    >>> pretokenize("Hello world! It's 2024.")
    ['Hello', ' world', '!', ' It', "'s", ' 2024', '.']

3. Training: count pairs, merge the most frequent, repeat
---------------------------------------------------------
Write each distinct pre-token as its tuple of byte ids, with the number of times it occurs.
Count every adjacent pair of ids in every pre-token, weighted by that number (``"aaa"`` holds the
pair ``(97, 97)`` twice). Take the most frequent pair; **tie rule**: among pairs with the same
count, take the greatest pair of ids, comparing the first ids, then the second ones, so
``max(counts, key=lambda pair: (counts[pair], pair))``. Record the merge, replace every
occurrence of the pair (scanning left to right, without overlaps: ``(97, 97)`` in ``"aaa"``
gives ``[256, 97]``) by the new id ``256 + i``, and repeat until you have `num_merges` merges
or no pair is left.

4. Training fast: count once, then update
-----------------------------------------
Recounting every pair after every merge costs (pairs in the text) x (merges): many seconds for
500 merges on 100 kB in Python, even counting each distinct pre-token once, and minutes over
every occurrence. But a merge changes only the pre-tokens that hold the merged pair,
usually a few percent of them. Keep the counts, and an index from each pair to the pre-tokens
that hold it; after a merge, for each pre-token holding the pair, subtract the counts of its
old pairs, merge, and add the counts of its new pairs::

    for word in words_with[best]:
        for pair in zip(word, word[1:]):
            counts[pair] -= frequency[word]
        new_word = merge_pair(word, best, new_id)
        for pair in zip(new_word, new_word[1:]):
            counts[pair] += frequency[word]
            words_with[pair].add(new_word)

The snippet leaves out three pieces of bookkeeping, each of which you need. The merged
pre-token replaces the old one: move its frequency from ``word`` to ``new_word``. The index may
still name pre-tokens merged away by an earlier merge: skip a ``word`` no longer in
``frequency``. And a pair whose count falls to 0 is gone: drop it from ``counts`` (the merged
pair ``best`` among them), so that the next ``max`` never picks it.

That makes 500 merges on 100 kB a matter of a second or two (the grader gives it a generous
limit and tells you when it runs out).

5. Encoding and decoding
------------------------
To encode, split into pre-tokens, write each as byte ids, and apply the learnt merges **in the
order they were learnt** (their *rank*): among the pairs present, merge the one learnt first,
everywhere in the pre-token, and repeat until no pair present has been learnt. Scanning left to
right and merging the first pair you know gives other tokens: with the merges
``(98, 99) -> 256`` ("bc") then ``(97, 98) -> 257`` ("ab"), "abc" must become ``[97, 256]``
("a", "bc"), not ``[257, 99]``.

To decode, look up each id's bytes (a byte for ids below 256, the two halves of its merge
joined for the others), join **all** the bytes, then decode UTF-8 once: one character's bytes
may be spread over two tokens, and decoding token by token breaks it. Use
``errors="replace"``, so that ids cut in the middle of a character (a model generating one
token at a time does that) decode to "\\ufffd" instead of raising.

6. GPT-2's own tokenizer
------------------------
GPT-2's regular expression is ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+|
?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``. Python's ``re`` has no ``\\p{L}`` (a letter): `PATTERN`
spells it ``[^\\W\\d_]``, which differs only on numerals that are not digits ("½", "²": a letter
here, a number in GPT-2's). The ``\\s+(?!\\S)`` part leaves the last space of a run to the next
word, so " world" keeps its space. GPT-2 learnt 50,000 merges on 40 GB of web text with this
rule; its files ``vocab.json`` (token -> id) and ``merges.txt`` (the merges in rank order) show
each byte as a printable character (a space is "Ġ") and number the bytes in their own order,
but every merged token's id is ``256 + rank``, as here. ``read_gpt2_bpe`` from
`keras_tx_tools.gpt2.bpe_files` reads them into this exercise's form: it returns
``(byte_ids, merges)``, and `BytePairTokenizer` takes the merges first, so name the two
rather than unpacking them straight into the call. Then your tokenizer speaks GPT-2 (the
course ships GPT-2's two files in ``datasets/gpt2``; run this from the course folder)::

    from keras_tx_tools.gpt2.bpe_files import read_gpt2_bpe
    byte_ids, merges = read_gpt2_bpe("datasets/gpt2")
    gpt2 = BytePairTokenizer(merges, byte_ids)
    gpt2.encode("Hello world")   # [15496, 995], GPT-2's own ids
    gpt2.decode([15496, 995])    # 'Hello world'
"""

import collections
import re

PATTERN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
"""GPT-2's pre-tokenisation rule, in Python's ``re`` (lesson, sections 2 and 6)."""


def pretokenize(text):
    """The pre-tokens of `text`, in order: joined, they give `text` back.

    Lesson: section 2.

    Example:
        >>> pretokenize("the cat's hat")
        ['the', ' cat', "'s", ' hat']
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def merge_pair(ids, pair, new_id):
    """`ids` with every occurrence of `pair`, scanned left to right without overlaps, made `new_id`.

    Lesson: section 3.

    Args:
        ids: a sequence of token ids.
        pair: two token ids ``(first, second)``.
        new_id: the id of the merged token.

    Returns:
        A tuple of ids.

    Example:
        >>> merge_pair((97, 97, 97, 98), (97, 97), 256)
        (256, 97, 98)
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def train_merges(text, num_merges):
    """The merges byte-level BPE learns from `text`, in the order it learns them.

    Lesson: sections 2 to 4. Merge ``i`` glues the pair into the new token ``256 + i``.

    Args:
        text: the training text.
        num_merges: how many merges to learn (fewer when no pair is left to merge).

    Returns:
        A list of ``(first_id, second_id)`` tuples.

    Example:
        >>> train_merges("low lower lowest", 2)  # "lo" and "ow" tie (three each): "ow", then "l"+"ow"
        [(111, 119), (108, 256)]
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


class BytePairTokenizer:
    """Byte-level BPE: text to token ids and back.

    Lesson: sections 1, 5 and 6.

    Args:
        merges: ``(first_id, second_id)`` pairs in rank order; merge ``i`` makes token ``256 + i``.
        byte_ids: the id of each byte value 0 to 255 (default: the byte value itself; GPT-2's
            files number the bytes otherwise).

    Example:
        >>> tokenizer = BytePairTokenizer.train("low lower lowest", 2)
        >>> tokenizer.encode("lowly")
        [257, 108, 121]
        >>> tokenizer.decode([257, 108, 121])
        'lowly'
    """

    def __init__(self, merges, byte_ids=None):
        raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")

    @classmethod
    def train(cls, text, num_merges):
        """A tokenizer with the merges learnt from `text` (see `train_merges`)."""
        raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")

    def encode(self, text):
        """The token ids of `text`: a list of ints."""
        raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")

    def decode(self, ids):
        """The text of the token ids `ids`."""
        raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")
