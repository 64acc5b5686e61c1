"""Build the student release: everything a student needs, and no implementation of what they write.

The bundle holds the exercises (``exercises/``, stubs regenerated here from ``solutions/`` so they
cannot be stale; their lessons are the docstrings), ``docs/``, the grader with the reference
outputs recorded from the solutions (``grader/reference/``, so ``pytest grader`` runs without
them), the data loaders and training tools (``keras_tx_tools/``, without the instructor's
``keras_tx_tools/course`` tooling, nor the tools that compute an answer for the library's models,
`LIBRARY_TOOLS`), the dataset files, the project files and a README written
for students. It never holds ``solutions/``, nor the grader's instructor-only code
(``grader/instructor/``), nor the finished library ``keras_tx/`` unless asked for
(`with_library`, for after the deadline).

A release may hand out some of the course's exercises: its grader then knows only those
(its ``grader/registry.py`` lists them), and each exercise they import that is left out
comes as given, finished code under a banner saying so, never graded
(`grader.registry.Course.subset`). :func:`build_release` refuses to finish if any file but a
given one still holds a ``BEGIN SOLUTION`` marker, the body of a solution, or code that computes
what an exercise asks (`keras_tx_tools.course.implementations`).

Example::

    build_release("release/")                                        # then: cd release && pytest grader
    build_release("week2/", exercises=["attention"])                 # masking comes as given code
"""

import ast
import os
import pathlib
import re
import shutil

from grader.registry import load_course
from keras_tx_tools import site
from keras_tx_tools.course import implementations, stubs

COPIED = ("keras_tx_tools", "grader", "datasets", "docs", "pyproject.toml", "LICENSE")
"""Parts of the repository copied into the release as they are (those that exist)."""

LIBRARY = "keras_tx"
"""The finished library: copied only with ``with_library``."""

INSTRUCTOR_ONLY = ("keras_tx_tools/course", "grader/instructor")
"""Left out of the copies: the tooling that makes stubs, releases and grades, and the grader's
code that computes what the exercises ask (its live references and diagnoses)."""

LIBRARY_TOOLS = ("keras_tx_tools/gpt2/checkpoint.py", "keras_tx_tools/training/schedule.py")
"""Tools for the library's models that compute what an exercise asks (GPT-2's weights put into a
`keras_tx.GPT`, nanoGPT's warm-up and cosine schedule): they ship with the library only. A
release trains the student's GPT with the student's own schedule, or Keras' `CosineDecay`."""

STUDENT_README = pathlib.Path(__file__).with_name("student_readme.md")
"""The template of the bundle's README.md: the exercises in order, grading, the table, the seed, allowed imports."""

GIVEN_NOTE = """
A file marked *given* is not an exercise of yours: it holds finished code,
under a banner saying so, because your exercises import it. It is not
graded; leave it as it is."""
"""Below the table of exercises in the README of a release with given files."""

_BUILD_FILES = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def repository_root():
    """The course repository this package is installed from (where ``solutions/`` lives)."""
    return pathlib.Path(__file__).resolve().parents[2]


def build_release(outdir, root=None, exercises=None, with_library=False):
    """Write the student release into the new or empty folder `outdir`.

    Args:
        outdir: where to build the bundle; must not exist or be empty.
        root: the course repository (default: `repository_root`).
        exercises: the names of the exercises to hand out (default: all); those they import
            and leave out come as given code.
        with_library: also ship the finished library ``keras_tx/`` and `LIBRARY_TOOLS` (after the deadline).

    Returns:
        `outdir` as a `pathlib.Path`.

    Raises:
        ValueError: `outdir` is not empty, `root` is not a course repository, `exercises` names
            an exercise the course lacks, or the bundle would contain solution code or an
            implementation.
    """
    root = pathlib.Path(root) if root else repository_root()
    outdir = pathlib.Path(outdir)
    solutions = root / "solutions"
    if not solutions.is_dir() or not (root / "grader").is_dir():
        raise ValueError(f"root must be the course repository with solutions/ and grader/, got {str(root)!r}")
    course = load_course(root).subset(exercises)
    if not any((root / "grader" / "reference").glob("*.npz")):
        raise ValueError("the grader has no recorded reference outputs: run `python -m grader.record_reference` first")
    if outdir.exists() and any(outdir.iterdir()):
        raise ValueError(f"outdir must be a new or empty folder, {str(outdir)!r} is not empty")
    outdir.mkdir(parents=True, exist_ok=True)
    left_out = {root / path for path in (*INSTRUCTOR_ONLY, *(() if with_library else LIBRARY_TOOLS))}
    left_out |= ungraded_files(root, course)

    def ignore(folder, names):
        return {*_BUILD_FILES(folder, names), *(name for name in names if pathlib.Path(folder, name) in left_out)}

    for name in (*COPIED, *([LIBRARY] if with_library else [])):
        source = root / name
        if source.is_dir():
            shutil.copytree(source, outdir / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, outdir / name)
    registry = outdir / "grader" / "registry.py"
    registry.write_text(released_registry(registry.read_text(encoding="utf-8"), course), encoding="utf-8")
    (outdir / "exercises").mkdir()
    for path, text in exercise_files(solutions, outdir / "exercises", course).items():
        path.write_text(text, encoding="utf-8")
    (outdir / "README.md").write_text(student_readme(course, root), encoding="utf-8")
    for page in (outdir / "docs").rglob("*.md"):
        page.write_text(released_links(page.read_text(encoding="utf-8"), page.relative_to(outdir), outdir, course),
                        encoding="utf-8")
    leaks = solution_leaks(outdir, solutions, course.graded)
    leaks += [found for found in implementations.implementations(outdir, implementations.library_classes(root))
              if not found.startswith((f"{LIBRARY}/", *LIBRARY_TOOLS))]  # they ship only when asked for
    if leaks:
        shutil.rmtree(outdir)
        raise ValueError("the release would contain solution code or implementations: " + "; ".join(leaks))
    return outdir


def released_links(text, page, outdir, course):
    """`text`, the Markdown of `page` (a path in the release `outdir`), with every relative link
    pointing at a file of the release: a site page read from a file (`keras_tx_tools.site.PAGES`)
    links that file, the course page the README, a lesson its exercise file; a link to what the
    release does not hold is left as plain text."""
    files = {"lessons/index.md": "README.md", **site.PAGES,
             **{site.lesson_page(exercise.name): f"exercises/{exercise.file}" for exercise in course
                if exercise.name in site.COURSE}}  # the site's lessons: an exercise added to a course has none
    folder = outdir / page.parent

    def resolved(match):
        label, target = match.groups()
        path, _, anchor = target.partition("#")
        if re.match(r"[a-z]+:", target) or not path:
            return match.group(0)
        if path in files:  # a page read from a file keeps its anchors; the README has the course's own
            path, anchor = os.path.relpath(outdir / files[path], folder), anchor if path in site.PAGES else ""
        if not (folder / path).exists():
            return label
        return f"[{label}]({path}{'#' + anchor if anchor else ''})"

    return re.sub(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)", resolved, text)


def ungraded_files(root, course):
    """The files of `root` about exercises `course` does not grade: their checks, recordings and
    solutions (a given exercise's solution stays, as its code is handed out)."""
    files = set()
    for name in set(load_course(root).names) - set(course.graded):
        files.update([root / "grader" / f"test_{name}.py", *(root / "grader" / "reference").glob(f"{name}.*")])
        if name not in course:
            files.add(root / "solutions" / f"{name}.py")
    return files


def exercise_files(solutions, folder, course):
    """``{path in folder: source}``: the stub of each exercise `course` grades, the given code of
    each it gives, and the package's ``__init__.py``."""
    files = {}
    for path in [pathlib.Path(solutions, "__init__.py"), *(pathlib.Path(solutions, e.file) for e in course)]:
        source = path.read_text(encoding="utf-8")
        given = path.stem in course and course[path.stem].given
        files[pathlib.Path(folder, path.name)] = stubs.given_code(source) if given else stubs.strip_solutions(source)
    return files


def released_registry(source, course):
    """`source`, the course's ``grader/registry.py``, defining `course` as its ``COURSE`` instead."""
    statement = next(node for node in ast.parse(source).body if isinstance(node, ast.Assign)
                     and any(getattr(target, "id", None) == "COURSE" for target in node.targets))
    lines = source.splitlines(keepends=True)
    return "".join(lines[: statement.lineno - 1]) + course.source() + "".join(lines[statement.end_lineno:])


def student_readme(course, root):
    """The release's README: the template with the table of `course`'s exercises, their lessons'
    titles and their points (`root` is the course repository)."""
    rows, total = [], 0
    for exercise in course:
        lesson = ast.get_docstring(ast.parse((root / "solutions" / exercise.file).read_text(encoding="utf-8")))
        heading = lesson.splitlines()[0] if lesson else ""
        title = heading.partition(": ")[2].rstrip(".")
        numbered = re.match(r"Exercise (\d+)", heading)  # the lessons refer to each other by these numbers
        if exercise.given:
            rows.append(f"| given | `exercises/{exercise.file}` | nothing: finished code, not graded ({title}) | - |")
            continue
        points = check_points(root / "grader" / exercise.checks)
        total += points
        number = numbered.group(1) if numbered else course.graded.index(exercise.name) + 1
        rows.append(f"| {number} | `exercises/{exercise.file}` | {title} | {points:g} |")
    template = STUDENT_README.read_text(encoding="utf-8")
    table = "\n".join(rows) + ("\n" + GIVEN_NOTE if course.given else "")
    return template.replace("{exercise_table}", table).replace("{total}", f"{total:g}")


def check_points(checks):
    """The points of the checks file `checks`: the sum of its ``@pytest.mark.points(n)`` markers."""
    return sum(decorator.args[0].value for node in ast.walk(ast.parse(pathlib.Path(checks).read_text()))
               if isinstance(node, ast.FunctionDef) for decorator in node.decorator_list
               if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", None) == "points")


def solution_bodies(solutions, exercises=None):
    """The code between the solution markers of the files in `solutions` (only those of
    `exercises`, when given), one string per region.

    Comments and blank lines are dropped and each line is stripped, so a body
    is recognised whatever its indentation.
    """
    bodies = []
    paths = sorted(pathlib.Path(solutions).glob("*.py"))
    for path in [path for path in paths if exercises is None or path.stem in exercises]:
        pattern = re.escape(stubs.BEGIN) + r"(.*?)" + re.escape(stubs.END)
        for region in re.findall(pattern, path.read_text(), flags=re.DOTALL):
            body = _code_lines(region)
            if body:
                bodies.append(body)
    return bodies


def solution_leaks(folder, solutions, exercises=None):
    """Files under `folder` holding a solution marker, or a solution body of `exercises` (default:
    all), with what they hold."""
    bodies = solution_bodies(solutions, exercises)
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
