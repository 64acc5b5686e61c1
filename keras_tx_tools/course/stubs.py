"""Generate the exercise stubs from the solutions: one source of truth.

Each answer in ``solutions/*.py`` sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
lines (nbgrader's markers). `strip_solutions` replaces every such region, markers included,
with one ``raise NotImplementedError(...)`` at the marker's indentation; everything else (the
lesson, signatures, docstrings) is kept as it is. An exercise a course hands out as *given*
code (a dependency of the exercises asked, see `grader.registry.Course.subset`) is its
solution instead, without the markers and under the `GIVEN` banner (`given_code`).

Command line, from the repository root::

    python -m keras_tx_tools.course.stubs            # rewrite exercises/ from solutions/
    python -m keras_tx_tools.course.stubs --check    # exit 1 if exercises/ is out of date

Example:

>>> print(strip_solutions("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION\\n"))
def f():
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")
<BLANKLINE>
"""

import argparse
import pathlib
import sys

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")'
GIVEN = (
    "# GIVEN CODE: finished, and not graded. This exercise is not part of your assignment; its answer\n"
    "# is handed out so that the exercises that build on it can import it. Read it, leave it as it is.\n"
)
"""The first lines of a given exercise file."""


def strip_solutions(source: str) -> str:
    """`source` with each marked solution region replaced by a ``NotImplementedError`` stub.

    Raises:
        ValueError: on a nested or unclosed region, or an END without a BEGIN, naming the line.
    """
    lines, begun_at = [], None
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if begun_at is not None:
                raise ValueError(f"line {number}: {BEGIN} inside the region opened on line {begun_at}")
            begun_at = number
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}{STUB}\n")
        elif marker == END:
            if begun_at is None:
                raise ValueError(f"line {number}: {END} without a {BEGIN}")
            begun_at = None
        elif begun_at is None:
            lines.append(line)
    if begun_at is not None:
        raise ValueError(f"line {begun_at}: {BEGIN} is never closed by {END}")
    return "".join(lines)


def given_code(source: str) -> str:
    """`source`, a solution, as given code: its marker lines dropped, the `GIVEN` banner on top.

    >>> print(given_code("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION\\n"), end="")
    # GIVEN CODE: finished, and not graded. This exercise is not part of your assignment; its answer
    # is handed out so that the exercises that build on it can import it. Read it, leave it as it is.
    def f():
        return 1
    """
    strip_solutions(source)  # the same checks of the markers
    return GIVEN + "".join(line for line in source.splitlines(keepends=True) if line.strip() not in (BEGIN, END))


def is_given_code(source: str) -> bool:
    """Whether `source` is an exercise handed out as given code (`given_code`)."""
    return source.startswith(GIVEN)


def generate(solutions, exercises):
    """``{path in exercises: stub source}`` for every ``*.py`` file in the `solutions` folder."""
    sources = sorted(pathlib.Path(solutions).glob("*.py"))
    if not sources:
        raise ValueError(f"no solution files (*.py) in {solutions}")
    stubs = {}
    for path in sources:
        try:
            stubs[pathlib.Path(exercises) / path.name] = strip_solutions(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{path}, {error}") from None
    return stubs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m keras_tx_tools.course.stubs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--solutions", default="solutions", help="folder of the marked solutions (default: solutions)")
    parser.add_argument("--exercises", default="exercises", help="folder of the stubs to write (default: exercises)")
    parser.add_argument("--check", action="store_true", help="only check that the stubs are up to date")
    args = parser.parse_args(argv)
    try:
        stubs = generate(args.solutions, args.exercises)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    stale = [path for path, text in stubs.items() if not path.is_file() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run python -m keras_tx_tools.course.stubs", file=sys.stderr)
        if not stale:
            print(f"{args.exercises}: all {len(stubs)} stubs are up to date with {args.solutions}")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(stubs[path], encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
