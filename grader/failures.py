"""What went wrong in a student's code, said the same way in the grader and in the sandbox.

`GradingFailure` is a failed check, its message the student's feedback; `GraderError` is a
check the grader itself could not run, never the student's failure; `describe_exception` names
what the student's code raised and where. Both run inside the sandbox too
(`grader.student_process`), so this module holds nothing that computes or checks an answer.

Example:

>>> describe_exception(ValueError("shapes differ"), "/nowhere")
'ValueError: shapes differ'
"""

import linecache
import os
import pathlib
import re

from grader.feedback import Feedback, as_feedback


class GradingFailure(AssertionError):
    """A check failed; its `Feedback` tells the student what is wrong and, if possible, why.

    `message` is a `Feedback`, or a string that only says where (shown whole at every hint level).
    """

    def __init__(self, message):
        self.feedback = as_feedback(message)
        super().__init__(str(self.feedback))


class HandInProblem(GradingFailure):
    """A failure of the hand-in itself, not of a check's values: a file that does not load or lacks a
    name, its process ended or ran out of time. Its message quotes no expected value, so a hidden
    check shows it whole (`grader.conftest`): a syntax error is named wherever it costs points.

    >>> HandInProblem("masking.py has a syntax error on line 3: expected ':'").feedback.at("locate")
    "masking.py has a syntax error on line 3: expected ':'"
    """


class GraderError(Exception):
    """The grader could not run a check (its process for students' code failed): not the student's failure."""


GRADED_PACKAGE = "graded_"
"""The prefix of the packages a submission's files are loaded into (`grader.submission`)."""


def failure_feedback(error, folder):
    """The `Feedback` a check that raised `error` gives: a `GradingFailure`'s own, or what the
    student's code raised (`describe_exception`, with `folder` the graded files), the same at every level."""
    if isinstance(error, GradingFailure):
        return error.feedback
    description = describe_exception(error, folder)
    for pattern, cause, fix in KNOWN_ERRORS:
        if re.search(pattern, description):
            return Feedback(f"your code raised {description}", cause, fix)
    return Feedback(f"your code raised {description}")


KNOWN_ERRORS = (
    (r"You must build the layer before accessing|object has no attribute '(embeddings|kernel|bias|gamma|beta)'",
     "a layer's weights were read before it was built (its first call builds it; on PyTorch the weight is not "
     "even an attribute until then)",
     "call the layer, or the model on a few tokens, before reading or setting its weights"),
)
"""``(pattern, cause, fix)``: errors whose message tells their cause, searched in `describe_exception`'s text."""


def describe_exception(error, folder):
    """``Type: message (file.py, line N: its code)``, at the last line of `folder`'s code it passed.

    The message is the exception's own (`exception_message`). Paths inside `folder` and the names
    of graded packages are left out, so the same files give the same message wherever and however
    often they are graded. An exception re-raised from a student's process (`grader.remote`)
    carries this description already.
    """
    if hasattr(error, "student_description"):
        return error.student_description
    location, package = "", None
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.startswith(str(folder)):
            code = linecache.getline(filename, traceback.tb_lineno).strip()
            location = f" ({filename[len(str(folder)) + 1:]}, line {traceback.tb_lineno}{': ' + code if code else ''})"
        package = traceback.tb_frame.f_globals.get("__name__", "").partition(".")[0]
        traceback = traceback.tb_next
    if not location and package and not package.startswith(GRADED_PACKAGE):
        location = f" (raised inside {package}, with no line of your files on the way: look at what your code gave it)"
    message = re.sub(rf"{GRADED_PACKAGE}[0-9a-f]+\.", "", exception_message(error)).replace(f"{folder}{os.sep}", "")
    return f"{type(error).__name__}: {message}{location}"


def quotes_no_expected_value(error):
    """Whether a hidden check may show `error`'s whole message: a problem of the hand-in itself
    (`HandInProblem`), or what the student's code raised in its own process (`grader.remote`),
    which never holds an expected value.
    """
    return isinstance(error, HandInProblem) or hasattr(error, "student_description")


def raising_stub(error):
    """``"model.py (GPT.__init__)"``: the exercise file, and its function, whose stub raised `error`
    (a ``NotImplementedError``), or None. An exception re-raised from a student's process carries it."""
    from grader.registry import COURSE

    if hasattr(error, "student_description"):
        return getattr(error, "raising_stub", None)
    found, traceback = None, error.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        path = pathlib.Path(code.co_filename)
        if path.suffix == ".py" and path.stem in COURSE:
            found = f"{path.name} ({getattr(code, 'co_qualname', code.co_name)})"  # co_qualname: Python 3.11+
        traceback = traceback.tb_next
    return found


KERAS_CALL_CONTEXT = re.compile(r"Exception encountered when calling .*?\n\n(?P<message>.*)\n\nArguments received by ",
                                re.DOTALL)
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def exception_message(error):
    """The exception's own message: without Keras' "Exception encountered when calling ..." wrapper
    (a layer's ``__call__`` adds it, with the arguments it received) and without terminal colour codes.

    >>> exception_message(ValueError("Exception encountered when calling Dense.call().\\n\\n"
    ...                              "\\x1b[1mshapes (2, 3) and (4, 5) are incompatible\\x1b[0m\\n\\n"
    ...                              "Arguments received by Dense.call():\\n  • inputs=tf.Tensor(...)"))
    'shapes (2, 3) and (4, 5) are incompatible'
    """
    message = str(error.message if isinstance(getattr(error, "message", None), str) else error)
    while (wrapped := KERAS_CALL_CONTEXT.search(message)) is not None:
        message = wrapped["message"]
    return TERMINAL_CODES.sub("", message).strip()
