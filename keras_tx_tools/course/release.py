"""Build the student release: everything a student needs, and no solution code.

The bundle holds the library (``keras_tx/``), the data and training tools
(``keras_tx_tools/``, without the instructor's ``keras_tx_tools/course``
tooling), the exercise stubs
(``exercises/``, regenerated here from ``solutions/`` so they cannot be
stale), the lessons (they live in the exercises' docstrings, plus ``docs/``),
the grader with the reference outputs recorded from the solutions
(``grader/reference/``, so ``pytest grader`` runs without them), the dataset
loaders, the project files and a README written for students. It never holds ``solutions/``, and :func:`build_release` refuses to
finish if any file of the bundle still contains a ``BEGIN SOLUTION`` marker
or the body of a solution.

Example::

    build_release("release/")          # then: cd release && pytest grader
"""

import pathlib
import re
import shutil

from keras_tx_tools.course import stubs

COPIED = ("keras_tx", "keras_tx_tools", "grader", "datasets", "docs", "pyproject.toml", "LICENSE")
"""Parts of the repository copied into the release as they are (those that exist)."""

INSTRUCTOR_ONLY = ("keras_tx_tools/course", "grader/instructor")
"""Left out of the copies: the tooling that makes stubs, releases and grades, and the grader's instructor-only code."""

STUDENT_README = pathlib.Path(__file__).with_name("student_readme.md")
"""The bundle's README.md: the exercises in order, grading, the table, the seed, allowed imports."""

_BUILD_FILES = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def repository_root():
    """The course repository this package is installed from (where ``solutions/`` lives)."""
    return pathlib.Path(__file__).resolve().parents[2]


def build_release(outdir, root=None):
    """Write the student release into the new or empty folder `outdir`.

    Args:
        outdir: where to build the bundle; must not exist or be empty.
        root: the course repository (default: `repository_root`).

    Returns:
        `outdir` as a `pathlib.Path`.

    Raises:
        ValueError: `outdir` is not empty, `root` is not a course repository,
            or the bundle would contain solution code.
    """
    root = pathlib.Path(root) if root else repository_root()
    outdir = pathlib.Path(outdir)
    solutions = root / "solutions"
    if not solutions.is_dir() or not (root / "grader").is_dir():
        raise ValueError(f"root must be the course repository with solutions/ and grader/, got {str(root)!r}")
    if not any((root / "grader" / "reference").glob("*.npz")):
        raise ValueError("the grader has no recorded reference outputs: run `python -m grader.record_reference` first")
    if outdir.exists() and any(outdir.iterdir()):
        raise ValueError(f"outdir must be a new or empty folder, {str(outdir)!r} is not empty")
    outdir.mkdir(parents=True, exist_ok=True)
    left_out = {root / path for path in INSTRUCTOR_ONLY}

    def ignore(folder, names):
        return {*_BUILD_FILES(folder, names), *(name for name in names if pathlib.Path(folder, name) in left_out)}

    for name in COPIED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, outdir / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, outdir / name)
    shutil.copy2(STUDENT_README, outdir / "README.md")
    (outdir / "exercises").mkdir()
    for path, stub in stubs.generate(solutions, outdir / "exercises").items():
        path.write_text(stub, encoding="utf-8")
    leaks = solution_leaks(outdir, solutions)
    if leaks:
        shutil.rmtree(outdir)
        raise ValueError("the release would contain solution code: " + "; ".join(leaks))
    return outdir


def solution_bodies(solutions):
    """The code between the solution markers of every file in `solutions`, one string per region.

    Comments and blank lines are dropped and each line is stripped, so a body
    is recognised whatever its indentation.
    """
    bodies = []
    for path in sorted(pathlib.Path(solutions).glob("*.py")):
        pattern = re.escape(stubs.BEGIN) + r"(.*?)" + re.escape(stubs.END)
        for region in re.findall(pattern, path.read_text(), flags=re.DOTALL):
            body = _code_lines(region)
            if body:
                bodies.append(body)
    return bodies


def solution_leaks(folder, solutions):
    """Files under `folder` holding a solution marker or a solution body, with what they hold."""
    bodies = solution_bodies(solutions)
    leaks = []
    for path in sorted(pathlib.Path(folder).rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        name = path.relative_to(folder)
        if "BEGIN SOLUTION" in text:
            leaks.append(f"{name}: a BEGIN SOLUTION marker")
        code = _code_lines(text)
        leaks += [f"{name}: the solution body {body.strip().splitlines()[0]!r}..." for body in bodies if body in code]
    return leaks


def _code_lines(text):
    """`text` as its stripped, non-blank, non-comment lines, each ending in a newline."""
    lines = (line.strip() for line in text.splitlines())
    return "".join(f"\n{line}" for line in lines if line and not line.startswith("#")) + "\n"
