"""Grading of exercises/tokenizer.py (20 points).

The texts are drawn afresh from the run's seed: made-up words of a few syllables, punctuation,
digits and other scripts, so that a tokenizer must follow the lesson's rules, not a text.
"""

import pathlib

import numpy as np
import pytest

from grader.checks import GradingFailure
from grader.families import MERGES, closest_mistake
from grader.feedback import Feedback
from grader.layout import PRETOKEN_PATTERN as PATTERN
from grader.limits import TimeLimitExceeded, time_limit
from grader.reference import FIXED_SEED, check_matches, check_rngs

SYLLABLES = ["ka", "to", "ri", "an", "el", "sho", "mu", "ne", "qu", "is", "ba", "the", "in", "y"]
EXTRAS = [".", ",", "!", "?", "'s", "'ll", " 42", " 1999", "\n", "\n\n", "  ", " —", " café", " 東京",
          " naïve", " e\u0301t\u00e9", " 🙂", " 👩🏽‍💻", "_x"]
HARD_STRINGS = ["", " ", "🙂", "e\u0301", "東京は晴れ", "👩🏽‍💻 done", "a\u0300\u0301\u0302", "\n\t  x  \n", "½²"]
"""Strings every tokenizer must round-trip: the empty string, emoji (one of several code points),
CJK, combining marks, whitespace runs and numerals that are not digits."""

DATASETS = pathlib.Path(__file__).resolve().parent.parent / "datasets"
GPT2_PARAGRAPH = ("The tokenizer's job isn't glamorous: it turns   text into numbers. GPT-2 learnt 50,000 merges "
                  "in 2019; naïve café-goers, 東京 and emoji 🙂 all survive the round trip.\n\n\tDone!")
GPT2_IDS = [464, 11241, 7509, 338, 1693, 2125, 470, 46185, 25, 340, 4962, 220, 220, 2420, 656, 3146, 13, 402, 11571, 12,
            17, 26338, 2026, 11, 830, 4017, 3212, 287, 13130, 26, 41492, 40304, 12, 31006, 11, 10545, 251,
            109, 12859, 105, 290, 44805, 32485, 477, 7866, 262, 2835, 5296, 13, 628, 197, 45677, 0]
"""GPT-2's ids of `GPT2_PARAGRAPH`, as the `tokenizers` library gives them with GPT-2's files
(the project's tests check this list against that library)."""


def fresh_text(rng, words):
    """A made-up text of about `words` words: syllables, punctuation, digits and other scripts."""
    pieces = []
    for _ in range(words):
        word = "".join(rng.choice(SYLLABLES, size=rng.integers(1, 4)))
        pieces.append((" " if pieces and rng.random() < 0.85 else "") + (word.title() if rng.random() < 0.1 else word))
        if rng.random() < 0.15:
            pieces.append(str(rng.choice(EXTRAS)))
    return "".join(pieces)


def as_merges(value, what):
    """The student's merges as a list of ``(int, int)`` tuples, or a `GradingFailure`."""
    try:
        merges = [tuple(int(i) for i in pair) for pair in value]
    except (TypeError, ValueError):
        raise GradingFailure(f"{what} returned a {type(value).__name__}, expected a list of (first_id, second_id)"
                             " pairs") from None
    if any(len(pair) != 2 for pair in merges):
        raise GradingFailure(f"{what} returned pairs that are not (first_id, second_id)")
    return merges


def as_ids(value, what):
    try:
        return [int(i) for i in value]
    except (TypeError, ValueError):
        raise GradingFailure(f"{what} returned a {type(value).__name__}, expected a list of token ids") from None


@pytest.mark.points(2)
def test_pretokenize_splits_like_gpt2(student, rngs):
    for rng in rngs:
        text = fresh_text(rng, 300)
        pieces = list(student.pretokenize(text))
        expected = PATTERN.findall(text)
        if pieces != expected:
            index = next(i for i, (mine, theirs) in enumerate(zip(pieces + [None] * len(expected), expected))
                         if mine != theirs)
            raise GradingFailure(Feedback(
                f"pretokenize: pre-token {index} is {(pieces + [None])[index]!r}, expected {expected[index]!r}",
                fix="the pre-tokens are the matches of PATTERN, in order (lesson, section 2)"))


def decode_hint(tokenizer, ids, decoded):
    """Why `decoded` is wrong, when it is what your decode gives for each token alone, joined."""
    try:
        pieces = "".join(tokenizer.decode([i]) for i in ids)
    except Exception:
        return None
    if pieces == decoded:
        return Feedback(cause="decoding token by token breaks characters whose UTF-8 bytes are spread over two tokens",
                        fix="join the bytes of all the ids first, then decode once (lesson, section 5)")
    return None


@pytest.mark.points(4)
def test_round_trip_of_any_text(student, rngs):
    for rng in rngs:
        tokenizer = student.BytePairTokenizer.train(fresh_text(rng, 400), 80)
        for text in [*HARD_STRINGS, fresh_text(rng, 60)]:
            ids = as_ids(tokenizer.encode(text), "encode")
            if any(not 0 <= i < 256 + 80 for i in ids):
                raise GradingFailure(f"encode({text!r}) gives ids outside 0 .. 335 with 80 merges: {ids}")
            decoded = tokenizer.decode(ids)
            if decoded != text:
                where = f"decode(encode({text!r})) gives {decoded!r}"
                raise GradingFailure((decode_hint(tokenizer, ids, decoded) or Feedback()).located(where))


def draw_training(rng, module):
    return {"text": np.asarray(fresh_text(rng, 700)), "num_merges": np.asarray(int(rng.integers(40, 90)))}


def run_training(module, inputs):
    merges = as_merges(module.train_merges(str(inputs["text"]), int(inputs["num_merges"])), "train_merges")
    return {"merges": np.asarray(merges, "int64").reshape(-1, 2)}


@pytest.mark.points(5)
def test_merges_match_reference(student, reference):
    for inputs, expected in reference("merges", draw_training, run_training):
        merges = run_training(student, inputs)["merges"]
        if len(merges) != int(inputs["num_merges"]):  # the drawn texts always hold enough pairs
            raise GradingFailure(f"train_merges(text, {int(inputs['num_merges'])}) learnt {len(merges)} merges")
        check_matches(merges, expected["merges"], "train_merges",
                      hint=lambda: closest_mistake(merges, expected, "merges", MERGES) or tie_hint(merges, expected))


def tie_hint(merges, expected):
    """The first merge that differs, when it is another of the pairs tied for the highest count.

    Live grading only: a recording keeps the merges and the ties as digests, which cannot be read
    off (the ties of each step would give the merges away)."""
    wanted, ties = expected["merges"], expected.get("merges>ties")
    if not (isinstance(wanted, np.ndarray) and isinstance(ties, np.ndarray)) or merges.shape != wanted.shape:
        return None
    differing = np.flatnonzero(np.any(merges != wanted, axis=-1))
    if not len(differing):
        return None
    step = int(differing[0])
    tied = [tuple(pair) for pair in ties[step].tolist() if pair[0] >= 0]
    if tuple(merges[step].tolist()) not in tied:
        return None
    return Feedback(f"train_merges: merge {step} is {tuple(merges[step].tolist())}, expected "
                    f"{tuple(wanted[step].tolist())}; the pairs {tied} have the same count there",
                    "your tie rule picks another of the pairs tied for the highest count (the first one counted?)",
                    "the lesson's tie rule takes the greatest pair: max(counts, key=lambda pair: (counts[pair], pair))")


def draw_encoding(rng, module):
    merges = module.train_merges(fresh_text(rng, 500), int(rng.integers(30, 70)))
    return {"merges": np.asarray(merges, "int64").reshape(-1, 2), "text": np.asarray(fresh_text(rng, 200))}


def run_encoding(module, inputs):
    tokenizer = module.BytePairTokenizer([tuple(pair) for pair in inputs["merges"].tolist()])
    return {"ids": np.asarray(as_ids(tokenizer.encode(str(inputs["text"])), "encode"), "int64")}


@pytest.mark.points(3)
def test_encode_applies_merges_by_rank(student, rngs):
    # "bc" is learnt first, then "ab": "abc" is "a" + "bc", whatever comes first in the text.
    for merges, text, expected in [([(98, 99), (97, 98)], "abc", [97, 256]),
                                   ([(98, 99), (97, 98), (97, 256)], " abcd", [32, 258, 100])]:
        ids = as_ids(student.BytePairTokenizer(merges).encode(text), "encode")
        if ids != expected:
            raise GradingFailure(Feedback(
                f"with the merges {merges} (merge i makes token 256 + i), encode({text!r}) gives {ids}, expected "
                f"{expected}", "yours applies the first known pair from the left, not the merges in their order",
                "apply the merges in the order they were learnt: the lowest rank among the pairs present first "
                "(lesson, section 5)"))


@pytest.mark.points(2)
def test_encode_matches_reference(student, reference):
    for inputs, expected in reference("encode", draw_encoding, run_encoding):
        check_matches(run_encoding(student, inputs)["ids"], expected["ids"], "encode with the reference's merges")


@pytest.mark.points(2)
def test_encode_reproduces_gpt2(student):
    from keras_tx_tools.gpt2.bpe_files import read_gpt2_bpe

    byte_ids, merges = read_gpt2_bpe(DATASETS / "gpt2")
    tokenizer = student.BytePairTokenizer(merges, byte_ids)
    for text, expected in (("Hello world", [15496, 995]), (GPT2_PARAGRAPH, GPT2_IDS)):
        ids = as_ids(tokenizer.encode(text), "encode")
        if ids != expected:
            raise GradingFailure(Feedback(
                f"with GPT-2's merges and byte ids, encode({text[:40]!r}...) gives {ids[:12]}..., GPT-2's ids are "
                f"{expected[:12]}...", fix="apply the merges by rank (see test_encode_applies_merges_by_rank), use "
                "byte_ids for the bytes, and merge i makes token 256 + i"))
        if tokenizer.decode(ids) != text:
            raise GradingFailure(f"with GPT-2's merges and byte ids, decode does not give back {text[:40]!r}...")


TRAINING_SECONDS = 30
"""The time 500 merges on 100 kB may take: the reference needs about a second."""


@pytest.mark.points(2)
def test_training_is_fast(student):
    """On one fixed text of about 100 kB, whatever the run's seed: a time is compared with a limit once."""
    text = fresh_text(check_rngs(FIXED_SEED, "test_training_is_fast")[1], 100_000 // 5)[:100_000]
    try:
        with time_limit(TRAINING_SECONDS, "training"):
            merges = as_merges(student.train_merges(text, 500), "train_merges")
    except TimeLimitExceeded:
        raise GradingFailure(Feedback(
            f"learning 500 merges on 100 kB took longer than {TRAINING_SECONDS} s",
            fix="count the pairs once, then after each merge update only the pre-tokens that hold the merged pair "
                "(lesson, section 4)")) from None
    if len(merges) != 500:
        raise GradingFailure(f"train_merges(100 kB of text, 500) learnt {len(merges)} merges, expected 500")
