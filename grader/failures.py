"""What went wrong in a student's code, said the same way in the grader and in the sandbox.

`GradingFailure` is a failed check, its message the student's feedback; `GraderError` is a
check the grader itself could not run, never the student's failure; `describe_exception` names
what the student's code raised and where. Both run inside the sandbox too
(`grader.student_process`), so this module holds nothing that computes or checks an answer.

Example:

>>> describe_exception(ValueError("shapes differ"), "/nowhere")
'ValueError: shapes differ'
"""

import os
import re


class GradingFailure(AssertionError):
    """A check failed; the message tells the student what is wrong and, if possible, why."""


class GraderError(Exception):
    """The grader could not run a check (its process for students' code failed): not the student's failure."""


GRADED_PACKAGE = "graded_"
"""The prefix of the packages a submission's files are loaded into (`grader.submission`)."""


def describe_exception(error, folder):
    """``Type: message (file.py, line N)``, pointing at the last line of `folder`'s code it passed.

    Paths inside `folder` and the names of graded packages are left out, so the same files give
    the same message wherever and however often they are graded. An exception re-raised from a
    student's process (`grader.remote`) carries this description already.
    """
    if hasattr(error, "student_description"):
        return error.student_description
    location, package = "", None
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.startswith(str(folder)):
            location = f" ({filename[len(str(folder)) + 1:]}, line {traceback.tb_lineno})"
        package = traceback.tb_frame.f_globals.get("__name__", "").partition(".")[0]
        traceback = traceback.tb_next
    if not location and package and not package.startswith(GRADED_PACKAGE):
        location = f" (raised inside {package}, with no line of your files on the way: look at what your code gave it)"
    message = re.sub(rf"{GRADED_PACKAGE}[0-9a-f]+\.", "", str(error)).replace(f"{folder}{os.sep}", "")
    return f"{type(error).__name__}: {message}{location}"
