"""A time limit for running a student's code, so an endless loop costs one test, not the run.

Example::

    with time_limit(5, "your split_heads"):
        student.split_heads(x, 2)      # raises TimeLimitExceeded after 5 s
        with alarm_held():
            ...                        # not interrupted: an exchange that must not be cut in half
"""

import contextlib
import signal
import threading


class TimeLimitExceeded(BaseException):
    """Raised inside code that ran out of time.

    A ``BaseException`` on purpose: a student's ``except Exception:`` must not swallow it.
    """


@contextlib.contextmanager
def time_limit(seconds, what):
    """Interrupt the block after `seconds` with `TimeLimitExceeded` naming `what`.

    The alarm repeats every second until the block ends, so code that catches the exception
    with a bare ``except:`` is interrupted again. Where signals are unavailable (Windows, or
    a thread other than the main one) the block runs without a limit.
    """
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        message = f"{what} took longer than {seconds:g} s: an endless loop?"
        if _held:
            _held[-1] = message
            return
        raise TimeLimitExceeded(message)

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_held = []
"""One entry per `alarm_held` block in progress: None, or the message of the alarm it held back."""


@contextlib.contextmanager
def alarm_held():
    """Run the block without interruption by `time_limit`; an alarm held back interrupts right after it."""
    _held.append(None)
    try:
        yield
    finally:
        message = _held.pop()
    if message:
        raise TimeLimitExceeded(message)
