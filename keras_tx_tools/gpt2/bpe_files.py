"""GPT-2's byte-pair encoding files, read as byte ids and merges of ids.

GPT-2 ships its tokenizer as ``vocab.json`` (each token -> its id) and
``merges.txt`` (the 50,000 merges in the order they were learnt, one
``first second`` pair a line after a ``#version`` line). Both write a token
as printable characters, one per byte: the 188 printable bytes stand for
themselves and the 68 others (space, control bytes, ...) are shifted to the
characters from U+0100 on, so that a space is ``Ġ`` (U+0120). `read_gpt2_bpe`
undoes that and returns what the course's tokenizer exercise takes: the id of
every byte, and every merge as a pair of ids (merge ``i`` makes token
``256 + i``, which GPT-2's vocabulary confirms).

The course ships the files in ``datasets/gpt2/`` (see ``datasets/README.md``).

>>> import pathlib
>>> byte_ids, merges = read_gpt2_bpe(pathlib.Path(__file__).parents[2] / "datasets" / "gpt2")
>>> byte_ids[ord(" ")], byte_ids[ord("!")], merges[0]  # the first merge: " " + "t"
(220, 0, (220, 83))
"""

import json
import pathlib

VOCABULARY, MERGES = "vocab.json", "merges.txt"


def byte_characters():
    """``{byte: the character GPT-2's files write it as}`` for the 256 byte values."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = (byte for byte in range(256) if byte not in printable)
    characters = {byte: chr(byte) for byte in printable}
    characters.update({byte: chr(256 + index) for index, byte in enumerate(shifted)})
    return characters


def read_gpt2_bpe(folder):
    """``(byte_ids, merges)`` from the ``vocab.json`` and ``merges.txt`` in `folder`.

    Returns:
        `byte_ids`: a list, the id of each byte value 0 to 255; `merges`: a list of
        ``(first_id, second_id)`` tuples in rank order.

    Raises:
        FileNotFoundError: a file is missing, naming it.
        ValueError: a merge makes a token whose id is not ``256 + rank``.
    """
    folder = pathlib.Path(folder)
    for name in (VOCABULARY, MERGES):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"no {name} in {folder}: GPT-2's tokenizer needs {VOCABULARY} and {MERGES}")
    vocabulary = json.loads((folder / VOCABULARY).read_text(encoding="utf-8"))
    characters = byte_characters()
    byte_ids = [vocabulary[characters[byte]] for byte in range(256)]
    lines = (folder / MERGES).read_text(encoding="utf-8").splitlines()
    merges = []
    for rank, line in enumerate(line for line in lines if line and not line.startswith("#version")):
        first, second = line.split(" ")
        if vocabulary[first + second] != 256 + rank:
            raise ValueError(f"{MERGES}, merge {rank} ({line!r}): its token has id {vocabulary[first + second]}, "
                             f"not 256 + {rank}")
        merges.append((vocabulary[first], vocabulary[second]))
    return byte_ids, merges
