"""Grading of exercises/sampling.py (20 points).

Everything is graded deterministically: the distribution the student returns is compared with
the reference's, and the inverse-CDF draw is given the uniform numbers. Only the last check
draws at random, from a fixed seed, and tests the draws against the student's own distribution.
"""

import math

import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, check_shape, is_close, tensor, to_numpy
from grader.feedback import Feedback

TEMPERATURE_FIX = "it divides the logits, before it: softmax(logits / T)"
"""The fix of every temperature applied after the softmax."""
SCALE_FILTER_SOFTMAX = "divide the logits by the temperature first, filter those, and take the softmax last"
"""The fix of every distribution whose temperature is applied out of order with the filters."""
KEEP_THE_MOST_LIKELY = "the most likely token is always kept (the tokens before it hold 0 < p)"
"""The fix of every top-p that keeps nothing where one token holds more than p."""

VOCAB = 9
ROWS = 4
TEMPERATURES = (0.0, 0.5, 1.0, 2.0)
TOP_K = ((1.0, 3, None), (0.5, 3, None), (2.0, 1, None), (1.0, VOCAB, None))
"""``(temperature, top_k, top_p)``: every row's 4th largest logit ties with its 3rd."""
TIED_RANK = 3
TOP_P = ((1.0, None, 0.6), (1.0, None, 0.9), (0.7, 6, 0.8))
"""The most likely token holds less than ``p``, and no cumulative sum is near ``p``."""
TOP_P_DOMINANT = ((1.0, None, 0.3), (1.0, 4, 0.5), (1.5, None, 0.4))
"""The most likely token alone holds more than ``p``."""


def described(temperature, top_k=None, top_p=None):
    settings = [f"temperature={temperature:g}"]
    settings += [f"top_k={top_k}"] if top_k is not None else []
    settings += [f"top_p={top_p:g}"] if top_p is not None else []
    return ", ".join(settings)


def key(temperature, top_k=None, top_p=None):
    return f"T{temperature:g}_k{top_k}_p{top_p}"


def distributions(module, logits, settings):
    """``{key: (B, V) array}``: `module`'s distribution under each ``(temperature, top_k, top_p)``."""
    return {key(*setting): to_numpy(module.next_token_distribution(tensor(logits), *setting), "next_token_distribution")
            for setting in settings}


def instructor():
    from grader.instructor import sampling

    return sampling


def draw_temperature(rng, module):
    return {"logits": rng.normal(0, 2, (ROWS, VOCAB)).astype("float32")}


def draw_top_k(rng, module):
    return {"logits": instructor().tied_logits(rng, ROWS, VOCAB, TIED_RANK)}


def draw_top_p(rng, module):
    return {"logits": instructor().top_p_logits(rng, ROWS, VOCAB, TOP_P)}


def draw_top_p_dominant(rng, module):
    return {"logits": instructor().top_p_logits(rng, ROWS, VOCAB, TOP_P_DOMINANT, dominant=True)}


def runner(settings):
    return lambda module, inputs: distributions(module, inputs["logits"], settings)


def check_distributions(student, cases, settings, hint):
    """Compare the student's distribution with the reference's under every setting of every case."""
    for inputs, expected in cases:
        actual = distributions(student, inputs["logits"], settings)
        for setting in settings:
            what = f"next_token_distribution(logits, {described(*setting)})"
            mine, reference = actual[key(*setting)], expected[key(*setting)]
            check_shape(mine, reference.shape, what)
            check_close(mine, reference, what, hint=lambda: scaled_after_softmax_hint(mine, what, setting)
                        or hint(mine, reference, what, setting, actual, expected)
                        or unscaled_filter_hint(what, setting, settings, actual, expected)
                        or not_finite_hint(what, mine) or sums_hint(mine, reference, what)
                        or dropped_or_added(mine > 0, reference > 0, what) or proportions_hint(mine, reference, what))


def scaled_after_softmax_hint(mine, what, setting):
    temperature = setting[0]
    if temperature in (0, 1) or not np.all(np.isfinite(mine)):
        return None
    if np.allclose(mine.sum(axis=-1), 1 / temperature, rtol=1e-4):
        return Feedback(f"{what}: your rows sum to 1 / temperature",
                        "the temperature is applied after the softmax: it divides the probabilities",
                        TEMPERATURE_FIX)
    return None


def not_finite_hint(what, mine):
    if np.all(np.isfinite(mine)):
        return None
    return Feedback(f"{what} holds NaN or inf", "is there a row where every logit was set to -inf, leaving nothing to keep?")


def sums_hint(mine, expected, what):
    """Rows that do not sum to 1: renormalised too early, or not at all."""
    sums = mine.sum(axis=-1)
    if np.all(np.abs(sums - 1) < 1e-4):
        return None
    where = f"{what}: your rows sum to {sums.min():.3g}..{sums.max():.3g}, not 1"
    same_support = np.array_equal(mine > 0, expected > 0)
    if same_support and is_close(mine / sums[:, None], expected):
        return Feedback(where, "the probabilities are in the right proportions but were filtered after the softmax, "
                        "which leaves them unnormalised", "set the filtered logits to -inf, then take the softmax last")
    return Feedback(where, "this is not a distribution", "a distribution's rows sum to 1")


def unscaled_filter_hint(what, setting, settings, actual, expected):
    """A filter right at temperature 1 and wrong at another temperature: it does not see the scaled logits."""
    temperature, *filters = setting
    at_one = [other for other in settings if other[0] == 1]
    if temperature in (0, 1) or not any(filters) or not at_one:
        return None
    if all(is_close(actual[key(*other)], expected[key(*other)]) for other in at_one):
        return Feedback(f"{what} differs, while every setting at temperature 1 matches",
                        "the filter does not see the logits divided by the temperature",
                        SCALE_FILTER_SOFTMAX)
    return None


def proportions_hint(mine, expected, what):
    """The right tokens kept, as a distribution, with other probabilities: the temperature is not the one asked."""
    if not np.array_equal(mine > 0, expected > 0):
        return None
    return Feedback(f"{what} keeps the right tokens, with other probabilities",
                    "the kept tokens are not weighted by the softmax of logits / temperature",
                    SCALE_FILTER_SOFTMAX)


def temperature_hint(mine, expected, what, setting, actual, reference):
    temperature = setting[0]
    at_one = reference[key(1.0)]
    if temperature == 0 and not np.all(np.isfinite(mine)):
        return Feedback(f"{what} holds NaN or inf", "logits / 0 divides by zero",
                        "temperature 0 is greedy decoding, a case of its own: return a one-hot row on argmax(logits)")
    if temperature not in (0, 1) and (is_close(mine, at_one) or is_close(mine * temperature, at_one)):
        divided = "" if is_close(mine, at_one) else " divided by the temperature"
        return Feedback(f"{what} equals the distribution at temperature 1{divided}",
                        "the temperature is applied after the softmax",
                        TEMPERATURE_FIX)
    if temperature == 0:
        return Feedback(f"{what} is not a one-hot row on the most likely token", "temperature 0 is greedy",
                        "one_hot(argmax(logits)), the first of tied maxima")
    return None


def top_k_hint(mine, expected, what, setting, actual, reference):
    if not np.all(np.isfinite(mine)):
        return None
    kept, should = mine > 0, expected > 0
    if np.all(kept <= should) and np.all(kept.sum(axis=-1) == setting[1]) and np.any(should.sum(axis=-1) > setting[1]):
        return Feedback(f"{what} keeps exactly {setting[1]} tokens",
                        f"it drops tokens whose logit ties with the k-th largest (k={setting[1]}), and the lesson's "
                        "tie rule keeps every logit equal to the k-th largest", "set to -inf only the logits below it")
    return None


def top_p_hint(mine, expected, what, setting, actual, reference):
    if not np.all(np.isfinite(mine)):
        return None
    kept, should = mine > 0, expected > 0
    if np.all(kept <= should) and np.all(kept.sum(axis=-1) == should.sum(axis=-1) - 1):
        least_likely_kept = np.where(should, expected, np.inf).argmin(axis=-1)
        if not np.any(kept[np.arange(len(kept)), least_likely_kept]):
            return Feedback(f"{what} keeps one token too few in every row",
                            "your top-p drops the token that crosses p: a token is kept when the tokens before it "
                            "hold less than p, so the one that brings the sum to p stays",
                            "compare p with the cumulative sum minus the token's own probability")
    return None


def dominant_hint(mine, expected, what, setting, actual, reference):
    if not np.all(np.isfinite(mine)):
        return Feedback(f"{what} holds NaN where the most likely token alone holds more than p",
                        "your top-p keeps nothing, so every logit is -inf",
                        KEEP_THE_MOST_LIKELY)
    if np.any(mine.max(axis=-1) < 1 - 1e-4) and not np.any(np.all(mine == 0, axis=-1)):
        if np.all(np.isclose(mine, 1 / mine.shape[-1])) or np.any(np.all(np.isclose(mine, mine[:, :1]), axis=-1)):
            return Feedback(f"{what} is uniform where the most likely token alone holds more than p",
                            "your top-p keeps nothing, so every logit is masked",
                            KEEP_THE_MOST_LIKELY)
    if np.any(np.all(mine == 0, axis=-1)):
        return Feedback(f"{what} has rows of zeros where the most likely token alone holds more than p",
                        "your top-p keeps nothing", KEEP_THE_MOST_LIKELY)
    return None


def dropped_or_added(kept, should, what):
    row = int(np.argmax(np.any(kept != should, axis=-1)))
    if not np.any(kept != should):
        return None
    extra, missing = np.flatnonzero(kept[row] & ~should[row]), np.flatnonzero(should[row] & ~kept[row])
    return Feedback(f"{what}, row {row}: "
                    + "; ".join(part for part in (f"tokens {extra.tolist()} should be filtered out" if extra.size else "",
                                                  f"tokens {missing.tolist()} should be kept" if missing.size else "")
                                if part))


@pytest.mark.points(4)
def test_temperature_and_greedy(student, reference):
    settings = [(temperature,) for temperature in TEMPERATURES]
    check_distributions(student, reference("temperature", draw_temperature, runner(settings)), settings,
                        temperature_hint)


@pytest.mark.points(3)
def test_top_k_keeps_ties(student, reference):
    check_distributions(student, reference("top_k", draw_top_k, runner(TOP_K)), TOP_K, top_k_hint)


@pytest.mark.points(3)
def test_top_p_keeps_the_token_that_crosses_p(student, reference):
    check_distributions(student, reference("top_p", draw_top_p, runner(TOP_P)), TOP_P, top_p_hint)


@pytest.mark.points(2)
def test_top_p_keeps_the_most_likely_token(student, reference):
    check_distributions(student, reference("top_p_dominant", draw_top_p_dominant, runner(TOP_P_DOMINANT)),
                        TOP_P_DOMINANT, dominant_hint)


DRAW_ROWS = 12
DRAW_VOCAB = 7


def draw_distributions(rng, module):
    probabilities, uniform = instructor().dyadic_distributions(rng, DRAW_ROWS, DRAW_VOCAB)
    return {"probabilities": probabilities, "uniform": uniform}


def run_draw(module, inputs):
    drawn = module.draw_token(tensor(inputs["probabilities"]), tensor(inputs["uniform"]))
    return {"tokens": to_numpy(drawn, "draw_token").astype("float32")}


@pytest.mark.points(4)
def test_draw_token_inverts_the_cdf(student, reference):
    for inputs, expected in reference("draw", draw_distributions, run_draw):
        probabilities, uniform = inputs["probabilities"], inputs["uniform"]
        tokens = run_draw(student, inputs)["tokens"]
        check_shape(tokens, expected["tokens"].shape, "draw_token(probabilities, uniform)")
        wrong = np.flatnonzero(tokens != expected["tokens"])
        if not wrong.size:
            continue
        row = int(wrong[0])
        drawn, token = int(tokens[row]), int(expected["tokens"][row])
        where = f"row {probabilities[row].tolist()} with u={uniform[row]:g}"
        if 0 <= drawn < probabilities.shape[1] and probabilities[row, drawn] == 0:
            raise GradingFailure(
                f"draw_token drew token {drawn}, of probability 0, for the {where}; expected {token}. A token of "
                "probability 0 owns an empty interval: count the tokens whose cumulative probability is <= u "
                "(with <=, not <)")
        raise GradingFailure(f"draw_token drew token {drawn} for the {where}; expected {token}, the first "
                             "token whose cumulative probability exceeds u")


SAMPLER_LOGITS = np.array([[2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -2.0, -4.0]], "float32")
SAMPLER_SETTINGS = ((0.8, 6, None), (1.3, None, 0.9), (0.0, None, None))
SAMPLER_DRAWS = 5000
SAMPLER_SEED = 2024
FALSE_ALARM = 1e-6
"""The chance that a correct sampler fails the chi-square test on one setting (an upper bound)."""


def chi_square_critical(degrees_of_freedom, false_alarm=FALSE_ALARM):
    """The chi-square value that a correct sampler exceeds with probability at most `false_alarm`.

    The Wilson-Hilferty approximation, which errs on the high side this far in the tail
    (5 degrees of freedom: 37.5, where the exact value is 35.9).

    >>> round(chi_square_critical(5), 1)
    37.5
    """
    z = _normal_quantile(1 - false_alarm)
    spread = 2 / (9 * degrees_of_freedom)
    return degrees_of_freedom * (1 - spread + z * math.sqrt(spread)) ** 3


def _normal_quantile(level):
    """The standard normal quantile, by bisection on ``erfc``."""
    low, high = 0.0, 40.0
    for _ in range(100):
        middle = (low + high) / 2
        if 0.5 * math.erfc(middle / math.sqrt(2)) > 1 - level:
            low = middle
        else:
            high = middle
    return low


def chi_square(counts, probabilities):
    """``(statistic, degrees of freedom)``; tokens expected fewer than 5 times are pooled into one bin."""
    expected = probabilities * counts.sum()
    small = expected < 5
    observed_bins = [*counts[~small], counts[small].sum()] if small.any() else list(counts)
    expected_bins = [*expected[~small], expected[small].sum()] if small.any() else list(expected)
    observed_bins, expected_bins = np.array(observed_bins, float), np.array(expected_bins, float)
    used = expected_bins > 0
    statistic = float(np.sum((observed_bins[used] - expected_bins[used]) ** 2 / expected_bins[used]))
    return statistic, int(used.sum()) - 1


@pytest.mark.points(4)
def test_sampler_draws_from_its_distribution(student):
    """Fixed logits and seed: the verdict is the same on every run. A correct sampler fails it with
    probability under `FALSE_ALARM` per setting."""
    logits = np.repeat(SAMPLER_LOGITS, SAMPLER_DRAWS, axis=0)
    for setting in SAMPLER_SETTINGS:
        what = described(*setting)
        distribution = to_numpy(student.next_token_distribution(tensor(SAMPLER_LOGITS), *setting),
                                "next_token_distribution")[0].astype(float)
        if not (np.all(np.isfinite(distribution)) and np.all(distribution >= 0) and distribution.sum() > 0):
            raise GradingFailure(f"next_token_distribution({what}) is not a distribution, so your sampler "
                                 "cannot draw from it: fix the checks above first")
        distribution /= distribution.sum()
        tokens = to_numpy(student.sample_next_token(tensor(logits), *setting, seed=SAMPLER_SEED), "sample_next_token")
        check_shape(tokens, (SAMPLER_DRAWS,), f"sample_next_token on {SAMPLER_DRAWS} rows")
        if not np.all((tokens >= 0) & (tokens < distribution.size) & (tokens == np.round(tokens))):
            raise GradingFailure(f"sample_next_token({what}) returned {tokens[:5].tolist()}..., "
                                 f"not token ids in 0..{distribution.size - 1}")
        counts = np.bincount(tokens.astype(int), minlength=distribution.size)
        impossible = np.flatnonzero((counts > 0) & (distribution == 0))
        if impossible.size:
            raise GradingFailure(
                f"sample_next_token({what}) drew token {int(impossible[0])} {counts[impossible[0]]} times out of "
                f"{SAMPLER_DRAWS}, though next_token_distribution gives it probability 0: does your sampler draw "
                "from next_token_distribution(...) with draw_token?")
        statistic, freedom = chi_square(counts, distribution)
        if freedom > 0 and statistic > chi_square_critical(freedom):
            frequencies = ", ".join(f"{count / SAMPLER_DRAWS:.3f}" for count in counts)
            probabilities = ", ".join(f"{p:.3f}" for p in distribution)
            raise GradingFailure(
                f"sample_next_token({what}) does not draw from the distribution next_token_distribution returns: "
                f"over {SAMPLER_DRAWS} draws the tokens came up with frequencies [{frequencies}], for probabilities "
                f"[{probabilities}] (chi-square {statistic:.1f} on {freedom} degrees of freedom; a correct sampler "
                f"exceeds {chi_square_critical(freedom):.1f} less than once in a million): draw with "
                "draw_token(next_token_distribution(...), keras.random.uniform(...))")
