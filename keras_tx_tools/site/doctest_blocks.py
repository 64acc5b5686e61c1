"""A griffe extension for the API reference: docstring examples shown as Python sessions.

The library's docstrings write their examples as doctest sessions (``>>>`` lines and the
output under them), which a terminal reads well but Markdown would take for nested quotes.
`fence_doctests` puts each session in a ``pycon`` code block; `DoctestBlocks` applies it to
every docstring mkdocstrings loads (``extensions:`` in ``mkdocs.yml``).

>>> fence_doctests("Example:\\n>>> 1 + 1\\n2\\n\\nMore text.").splitlines()
['Example:', '```pycon', '>>> 1 + 1', '2', '```', '', 'More text.']
"""

import re

import griffe


def fence_doctests(text):
    """`text` with every doctest session (``>>>`` lines up to the next blank line) in a ``pycon`` block."""
    return re.sub(r"^([ \t]*)(>>> .*?)(?=\n[ \t]*\n|\Z)", r"\1```pycon\n\1\2\n\1```", text, flags=re.MULTILINE | re.DOTALL)


class DoctestBlocks(griffe.Extension):
    """Fences the doctest sessions of every docstring that griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
