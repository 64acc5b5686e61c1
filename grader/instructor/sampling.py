"""Inputs for the sampling checks, drawn so that no verdict hangs on a rounding error.

Top-p keeps a token when the tokens more likely than it hold less than ``p``: a cumulative
probability within a rounding error of ``p`` would let float32 on one backend keep a token that
another drops. The rows drawn here keep every such sum at least `MARGIN` away from each ``p``.

>>> import numpy as np
>>> logits = top_p_logits(np.random.default_rng(0), rows=2, vocab=7, settings=[(1.0, None, 0.6)])
>>> logits.shape, logits.dtype
((2, 7), dtype('float32'))
"""

import numpy as np

MARGIN = 0.02
"""How far every cumulative probability stays from each ``p`` of the checks."""


def tied_logits(rng, rows, vocab, k):
    """Distinct random logits, except that in every row the ``k+1``-th largest equals the ``k``-th."""
    logits = rng.permuted(np.tile(np.arange(vocab, dtype="float32"), (rows, 1)), axis=1) * 0.7
    logits += rng.normal(0, 0.05, (rows, vocab)).astype("float32")
    order = np.argsort(-logits, axis=1)
    rows_index = np.arange(rows)
    logits[rows_index, order[:, k]] = logits[rows_index, order[:, k - 1]]
    return logits


def top_p_logits(rng, rows, vocab, settings, dominant=False):
    """Logits whose filtered distributions keep every cumulative sum `MARGIN` away from each ``p``.

    `settings` holds ``(temperature, top_k, top_p)`` triples. With `dominant`, the most likely
    token alone holds more than every ``p`` (top-p then keeps it alone); otherwise it holds less
    than every ``p``, so that the token crossing ``p`` is never the first.
    """
    drawn = []
    while len(drawn) < rows:
        row = rng.normal(0, 1.5, vocab).astype("float32")
        if dominant:
            row[rng.integers(vocab)] += 6
        if all(_fits(row, *setting, dominant) for setting in settings):
            drawn.append(row)
    return np.stack(drawn)


def _fits(row, temperature, top_k, top_p, dominant):
    scaled = row / temperature
    if top_k is not None:
        scaled = np.where(scaled < np.sort(scaled)[-top_k], -np.inf, scaled)
    probabilities = np.exp(scaled - scaled.max())
    descending = np.sort(probabilities / probabilities.sum())[::-1]
    if dominant:
        return descending[0] > top_p + MARGIN
    cumulative = np.cumsum(descending)
    return descending[0] < top_p - MARGIN and bool(np.all(np.abs(cumulative - top_p) > MARGIN))


def dyadic_distributions(rng, rows, vocab):
    """``(probabilities, uniform)`` for the inverse-CDF check: eighths, zeros and boundary draws.

    Every probability is a multiple of 1/8, so every cumulative sum is exact in float32, and
    the uniform numbers include 0 and the exact boundaries between tokens, where ``<`` and
    ``<=`` part ways; some rows start with tokens of probability 0.
    """
    probabilities = np.zeros((rows, vocab), "float32")
    uniform = np.zeros(rows, "float32")
    for row in range(rows):
        support = rng.choice(vocab, size=rng.integers(2, vocab), replace=False)
        if row % 3 == 0:  # token 0 left empty, and u = 0: the draw must skip it
            support = support[support != 0]
        eighths = rng.multinomial(8 - len(support), np.full(len(support), 1 / len(support))) + 1
        probabilities[row, support] = eighths / 8
        boundaries = np.cumsum(probabilities[row])[:-1]
        if row % 3:
            uniform[row] = rng.choice([*boundaries[boundaries < 1], rng.uniform(0, 0.99)])
    return probabilities, uniform
