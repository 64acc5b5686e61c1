"""The documentation site: MkDocs with the hooks of `keras_tx_tools.site.hooks`.

Some of its pages are not files under ``docs/``: the lessons, rendered from the exercises, and
`PAGES`, read from files elsewhere in the repository. Their site paths are defined here, where
the student release (which rewrites links to them into links to their files) reads them too.
"""

from grader.registry import COURSE

PAGES = {
    "grader.md": "grader/README.md",
    "benchmarks.md": "benchmarks/RESULTS.md",
    "datasets.md": "datasets/README.md",
    "contributing.md": "CONTRIBUTING.md",
    "changelog.md": "CHANGELOG.md",
}
"""Site pages copied from files of the repository: {page: file}."""


def lesson_page(exercise):
    """The site path of an exercise's lesson (numbered, so the folder lists in course order)."""
    return f"lessons/{COURSE.names.index(exercise):02d}-{exercise}.md"  # numbered as the lessons number their exercises
