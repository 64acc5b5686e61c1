"""A time limit for running a student's code, so an endless loop costs one test, not the run.

Example::

    with time_limit(5, "your split_heads"):
        student.split_heads(x, 2)      # raises TimeLimitExceeded after 5 s
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
        raise TimeLimitExceeded(f"{what} took longer than {seconds:g} s: an endless loop?")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
