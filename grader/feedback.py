"""A failed check's message at three hint levels: how much of the answer it gives away.

Every message names *where* things go wrong (the value, check or sublayer), and where the
grader can tell, the *cause* and the *fix*. The three are kept apart in one `Feedback`, so
that a hint level is a choice of parts, never an edit of a finished sentence:

* ``full`` (the default): where, the cause and the fix, for self-study;
* ``cause``: where and the cause, without the fix;
* ``locate``: only where.

Example:

>>> feedback = Feedback("the attention weights: not the reference's values",
...                     "the scores are not scaled", "divide Q @ K^T by sqrt(d) before the softmax")
>>> feedback.at("cause")
"the attention weights: not the reference's values — the scores are not scaled"
>>> Feedback(cause="the mask is ignored", fix="pass it on").located("blocks.0 differs").at("full")
'blocks.0 differs — the mask is ignored: pass it on'
"""

import dataclasses

HINT_LEVELS = ("full", "cause", "locate")
"""How much a message gives away, most first; ``full`` is the default."""


@dataclasses.dataclass(frozen=True)
class Feedback:
    """Where a check fails, and, when known, why (`cause`) and what to do (`fix`)."""

    where: str = None
    cause: str = None
    fix: str = None

    def located(self, where):
        """This feedback at `where`, unless it already names a place."""
        return self if self.where else dataclasses.replace(self, where=where)

    def at(self, level):
        """The message at hint `level` (one of `HINT_LEVELS`)."""
        return " — ".join(part for part in (self.where or "not what the exercise asks", self.why(level)) if part)

    def why(self, level):
        """The cause and the fix that hint `level` gives, without the place: it never quotes the expected
        values, so it may be shown where a hidden check's message may not ("" when there is none).

        >>> Feedback("logits[0] is 2.0, expected 3.0", "the residual is missing", "add x back").why("cause")
        'the residual is missing'
        """
        check_hint_level(level)
        return {"full": ": ".join(part for part in (self.cause, self.fix) if part), "cause": self.cause}.get(level) or ""

    def __str__(self):
        return self.at("full")


def check_hint_level(hints):
    """Fail clearly unless `hints` is one of `HINT_LEVELS`.

    >>> check_hint_level("all")
    Traceback (most recent call last):
    ...
    ValueError: hints must be one of full, cause, locate; got 'all'
    """
    if hints not in HINT_LEVELS:
        raise ValueError(f"hints must be one of {', '.join(HINT_LEVELS)}; got {hints!r}")


def as_feedback(message):
    """`message` as a `Feedback`: a plain string is a place, shown whole at every level."""
    return message if isinstance(message, Feedback) else Feedback(str(message))


def hint_feedback(hint):
    """What a check's `hint` callable says on a mismatch, as a `Feedback` (a plain string is the cause);
    None when there is no hint or it found nothing.

    >>> hint_feedback(lambda: "the scores are not scaled").at("locate")
    'not what the exercise asks'
    >>> hint_feedback(None) is None
    True
    """
    found = hint() if hint else None
    return Feedback(cause=found) if isinstance(found, str) else found
