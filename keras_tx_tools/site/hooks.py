"""MkDocs hooks (``hooks:`` in ``mkdocs.yml``): the pages that are read from elsewhere, not written twice.

- One lesson page per exercise of the course (`grader.registry.COURSE`, so a new exercise
  appears by itself), rendered from its file in ``exercises/`` (`keras_tx_tools.site.lessons`),
  with the pictures the tools drew for it (`PICTURES`), and a course page listing them in order.
- The pages whose text lives beside the code: the grader's guide, the benchmark results, the
  datasets, the contributors' guide and the changelog; links between them point at their pages.
- MathJax, served by the site itself from the `jupyter_server_mathjax` package, so that the
  math renders offline.

Build the site with ``mkdocs build --strict`` (into ``site/``) or read it with ``mkdocs serve``.
"""

import pathlib

import jupyter_server_mathjax
from mkdocs.structure.files import File

from grader.registry import COURSE
from keras_tx_tools.site import PAGES, lesson_page
from keras_tx_tools.site.lessons import lesson_docstring, lesson_markdown

ROOT = pathlib.Path(__file__).resolve().parents[2]

LINKS = {link: page for page, source in {**PAGES, "results.md": "docs/results.md"}.items()
         for link in (f"../{source}", source)}
"""Links between those files, as the repository writes them (from a folder, or from the root), and their pages."""

PICTURES = {
    "masking": [("reverse-attention.png", "Every head of a GPT trained by `keras-tx train reverse`: "
                 "under the causal mask, the upper triangle (the future) gets no weight.")],
    "model": [("reverse-loss.png", "The loss of `keras-tx train reverse`, as the run plots it."),
              ("reverse-attention.png", "Its attention: in the second half, heads read the first half "
               "backwards (the anti-diagonal); the first half is random and cannot be predicted.")],
}
"""Pictures drawn by the tools (``docs/images/``), shown at the end of a lesson: {exercise: [(file, caption)]}."""

MATHJAX = pathlib.Path(jupyter_server_mathjax.__file__).parent / "static"
MATHJAX_URL = "assets/mathjax"


def on_config(config):
    """Expands the nav entry of the course page into the course page and one page per lesson."""
    for index, entry in enumerate(config["nav"] or []):
        if isinstance(entry, dict) and list(entry.values()) == ["lessons/index.md"]:
            (title,) = entry
            config["nav"][index] = {title: ["lessons/index.md", *(lesson_page(name) for name in COURSE.names)]}
    return config


def on_files(files, config):
    """Adds the lesson pages, the pages read from the repository, and MathJax."""
    for exercise in COURSE:
        files.append(File.generated(config, lesson_page(exercise.name), content=_lesson(exercise.name)))
    files.append(File.generated(config, "lessons/index.md", content=_course()))
    for page, source in PAGES.items():
        files.append(File.generated(config, page, content=(ROOT / source).read_text(encoding="utf-8")))
    for path in sorted(MATHJAX.rglob("*")):
        if path.is_file():
            files.append(File.generated(config, f"{MATHJAX_URL}/{path.relative_to(MATHJAX).as_posix()}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Points links between repository files at their pages."""
    for link, target in LINKS.items():
        markdown = markdown.replace(f"]({link}", f"]({target}")
    return markdown


def _lesson(exercise):
    markdown = lesson_markdown(lesson_docstring(ROOT / "exercises" / f"{exercise}.py"))
    pictures = PICTURES.get(exercise, [])
    if pictures:
        markdown += "\n## What the tools draw\n\n"
        markdown += "\n".join(f"![{caption}](../images/{name})\n\n*{caption}*\n" for name, caption in pictures)
    fill_in = f"`exercises/{exercise}.py`"
    return markdown + f"\n---\n\nWrite your answers in {fill_in}, then grade them with `pytest grader/test_{exercise}.py`.\n"


def _course():
    rows = "\n".join(f"{number}. [{lesson_docstring(ROOT / 'exercises' / exercise.file).splitlines()[0].rstrip('.')}]"
                     f"({lesson_page(exercise.name).removeprefix('lessons/')})"
                     for number, exercise in enumerate(COURSE))
    return ("# The course\n\nThe lessons in the order the exercises build the model. Each is the docstring that "
            "opens its exercise file: read it here or in `exercises/`, then fill in the file and run `pytest grader`."
            f"\n\n{rows}\n")
