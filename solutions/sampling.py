"""Exercise 6: choosing the next token (greedy, temperature, top-k, top-p).

Lesson
======

1. From logits to a distribution
--------------------------------
The GPT of exercise 4 ends with one logit per vocabulary entry at every position; the logits of
the *last* position, a ``(B, V)`` tensor, say what should come next. ``softmax`` turns a row of
logits into probabilities, and generating text means drawing the next token from them, appending
it and starting again. This exercise writes that draw in two steps, so that each can be checked
exactly: ``next_token_distribution`` returns the ``(B, V)`` float32 probabilities the token is
drawn from, and ``draw_token`` draws from them given a uniform random number per row.

2. Temperature
--------------
Divide the logits by a **temperature** ``T`` before the softmax: ``softmax(logits / T)``.
``T < 1`` stretches the gaps between logits, so the likely tokens get likelier (sharper text);
``T > 1`` shrinks them, toward the uniform distribution (more surprising text). The temperature
divides the *logits*: dividing the probabilities after the softmax only rescales them, and once
renormalised the temperature has had no effect at all. (Raising the probabilities to the power
``1 / T`` and renormalising is the same as ``softmax(logits / T)``, and is also correct.)

``T = 0`` is **greedy** decoding: always the most likely token. ``logits / 0`` divides by zero
(``inf`` and ``NaN``, and a softmax of ``NaN`` is ``NaN``), so temperature 0 is a case of its
own: the distribution is a one-hot row on ``argmax(logits)``. When several logits tie for the
largest, the greedy token is the first of them (``ops.argmax`` picks the first).

3. Top-k
--------
A sampled text goes wrong when it picks one of the thousands of unlikely tokens in the long
tail. **Top-k** keeps only the ``k`` most likely tokens: every logit below the ``k``-th largest
becomes ``-inf`` (``float("-inf")``), whose softmax weight is exactly 0. ``ops.top_k(logits, k)``
returns the ``k`` largest values (and their indices); the last of those values is the threshold.

The tie rule: a token whose logit *equals* the ``k``-th largest is kept too, so with ties more
than ``k`` tokens may survive (``[3, 1, 1, 0]`` with ``k = 2`` keeps ``3, 1, 1``). That is the
rule of Hugging Face's ``TopKLogitsWarper``, and it does not depend on which of the tied tokens
happens to come first. Keeping exactly ``k`` by their indices would drop tied tokens arbitrarily.

4. Top-p (nucleus sampling)
---------------------------
A fixed ``k`` is too many when the model is sure and too few when it hesitates. **Top-p** keeps
the smallest set of most likely tokens whose probabilities add up to at least ``p``. Sort the
probabilities in decreasing order and walk down the list: a token is kept when the tokens
*before* it hold less than ``p`` in all. So the token that crosses ``p`` is kept (it is what
brings the sum to ``p``), and the most likely token is always kept (nothing comes before it),
even when it alone holds more than ``p``: a filter that keeps nothing leaves nothing to draw.

With probabilities ``0.5, 0.3, 0.15, 0.05`` and ``p = 0.7``: ``0.5`` is kept (0 before it),
``0.3`` is kept (0.5 before it, less than 0.7; it crosses p), ``0.15`` is not (0.8 before it).
A practical way: sort descending (``ops.flip(ops.sort(probabilities, axis=-1), axis=-1)``), take
``ops.cumsum`` minus the probability itself (the mass before each token), find the smallest
probability that is kept, and set the logits of every token less likely than it to ``-inf``.
Tokens tied with that smallest kept probability are kept too (the tie rule of top-k).

5. The order
------------
Temperature first, then top-k, then top-p on the distribution that is left (``softmax`` of the
scaled, top-k-filtered logits), and one softmax at the very end, over the logits that remain:
the kept probabilities are *renormalised* to sum to 1. Filtering after the softmax by zeroing
probabilities, without renormalising, leaves rows that sum to less than 1. Compute in float32.

6. Drawing with a uniform number (the inverse CDF)
--------------------------------------------------
Lay the probabilities of a row end to end on ``[0, 1)``: token ``i`` owns the interval from the
cumulative probability before it to its own cumulative probability. A uniform number ``u`` falls
into exactly one interval, and each token's chance is the length of its interval, its
probability. So the token drawn is the number of tokens whose cumulative probability is
``<= u``: the first token whose cumulative probability exceeds ``u``. A token of probability 0
owns an empty interval and is never drawn, not even for ``u = 0`` (count with ``<=``, not
``<``). Float sums may end a hair below 1: compare ``u`` scaled by the row's total
(``cumulative[:, -1:]``), so that ``u < 1`` always lands on a token.

``sample_next_token`` puts it together: the distribution, one ``keras.random.uniform`` number
per row (with the given ``seed``), and ``draw_token``. The grader checks the distribution and
the draw exactly, with uniform numbers it chooses, and then draws thousands of tokens with your
sampler and checks, with a chi-square test, that they follow the distribution you return.
"""

import keras
from keras import ops


def top_k_filter(logits, k):
    """Set every logit below the `k`-th largest of its row to ``-inf``; ties with it are kept.

    Lesson: section 3.

    Args:
        logits: ``(B, V)`` float tensor.
        k: number of tokens to keep, ``1 <= k <= V``.

    Example:
        >>> filtered = top_k_filter(ops.convert_to_tensor([[3.0, 1.0, 1.0, 0.0]]), k=2)
        >>> ops.convert_to_numpy(filtered).tolist()
        [[3.0, 1.0, 1.0, -inf]]
    """
    ### BEGIN SOLUTION
    kth_largest = ops.top_k(logits, k)[0][:, -1:]
    return ops.where(logits < kth_largest, float("-inf"), logits)
    ### END SOLUTION


def top_p_filter(logits, p):
    """Keep the smallest set of most likely tokens holding at least `p`; the others get ``-inf``.

    Lesson: section 4.

    Args:
        logits: ``(B, V)`` float tensor (``-inf`` entries allowed).
        p: a number in ``(0, 1]``.

    Example:
        >>> logits = ops.log(ops.convert_to_tensor([[0.5, 0.3, 0.15, 0.05]]))
        >>> ops.convert_to_numpy(ops.softmax(top_p_filter(logits, 0.7))).round(3).tolist()
        [[0.625, 0.375, 0.0, 0.0]]
    """
    ### BEGIN SOLUTION
    probabilities = ops.softmax(logits, axis=-1)
    descending = ops.flip(ops.sort(probabilities, axis=-1), axis=-1)
    before = ops.cumsum(descending, axis=-1) - descending  # the mass of the more likely tokens
    smallest_kept = ops.min(ops.where(before < p, descending, 1.0), axis=-1, keepdims=True)
    return ops.where(probabilities < smallest_kept, float("-inf"), logits)
    ### END SOLUTION


def next_token_distribution(logits, temperature=1.0, top_k=None, top_p=None):
    """The probabilities the next token is drawn from: scaled, filtered, renormalised.

    Lesson: sections 2 to 5.

    Args:
        logits: ``(B, V)`` float tensor, the model's logits at the last position.
        temperature: a number ``>= 0``; 0 is greedy (a one-hot row on the argmax).
        top_k: None, or keep the `top_k` most likely tokens (and those tied with the last).
        top_p: None, or keep the smallest set of most likely tokens holding at least `top_p`.

    Returns:
        A ``(B, V)`` float32 tensor whose rows sum to 1.

    Example:
        >>> logits = ops.convert_to_tensor([[2.0, 1.0, 0.0]])
        >>> ops.convert_to_numpy(next_token_distribution(logits, temperature=0)).tolist()
        [[1.0, 0.0, 0.0]]
        >>> ops.convert_to_numpy(next_token_distribution(logits, top_k=1)).tolist()
        [[1.0, 0.0, 0.0]]
    """
    ### BEGIN SOLUTION
    logits = ops.cast(logits, "float32")
    if temperature == 0:
        return ops.one_hot(ops.argmax(logits, axis=-1), ops.shape(logits)[-1])
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return ops.softmax(logits, axis=-1)
    ### END SOLUTION


def draw_token(probabilities, uniform):
    """Draw one token per row by the inverse CDF: the first whose cumulative probability exceeds `uniform`.

    Lesson: section 6.

    Args:
        probabilities: ``(B, V)`` float tensor whose rows sum to 1.
        uniform: ``(B,)`` float tensor of numbers in ``[0, 1)``.

    Returns:
        A ``(B,)`` int32 tensor of token ids.

    Example:
        >>> probabilities = ops.convert_to_tensor([[0.0, 0.25, 0.75], [0.5, 0.5, 0.0]])
        >>> ops.convert_to_numpy(draw_token(probabilities, ops.convert_to_tensor([0.0, 0.5]))).tolist()
        [1, 1]
    """
    ### BEGIN SOLUTION
    cumulative = ops.cumsum(probabilities, axis=-1)
    passed = cumulative <= uniform[:, None] * cumulative[:, -1:]
    return ops.sum(ops.cast(passed, "int32"), axis=-1)
    ### END SOLUTION


def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, seed=None):
    """Draw the next token of each row from `next_token_distribution`.

    Lesson: section 6.

    Args:
        logits, temperature, top_k, top_p: as for `next_token_distribution`.
        seed: None, an integer, or a ``keras.random.SeedGenerator``: the seed of
            ``keras.random.uniform``.

    Returns:
        A ``(B,)`` int32 tensor of token ids.

    Example:
        >>> logits = ops.convert_to_tensor([[0.0, 5.0, 1.0]])
        >>> ops.convert_to_numpy(sample_next_token(logits, temperature=0)).tolist()
        [1]
    """
    ### BEGIN SOLUTION
    probabilities = next_token_distribution(logits, temperature, top_k, top_p)
    uniform = keras.random.uniform(ops.shape(probabilities)[:1], seed=seed)
    return draw_token(probabilities, uniform)
    ### END SOLUTION
