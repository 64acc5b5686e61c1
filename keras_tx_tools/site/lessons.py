"""The lessons as pages of the documentation site, read from the exercise files themselves.

Every exercise file opens with its lesson, a docstring written for a terminal: a title line,
headings underlined with ``===`` or ``---``, ``literal`` spans, ``*`` bullets and ``::``
blocks. `lesson_markdown` turns one into Markdown for MkDocs: the title becomes the page's
heading, the ``Lesson`` banner goes, numbered headings become sections, simple tables (columns
under ``=====  =====`` borders) become Markdown tables, and a span or block
written as a formula becomes typeset math (`keras_tx_tools.site.plain_math`) while code
stays code. The docstring is read with `ast`, so no exercise is imported (and no backend).

>>> print(lesson_markdown('''Exercise 9: a demo.
...
... Lesson
... ======
...
... 1. Scores
... ---------
... Divide ``q . k`` by ``sqrt(d)`` before ``keras.ops.softmax``::
...
...     w = softmax(q / sqrt(d))
... '''))
# Exercise 9: a demo
<BLANKLINE>
## 1. Scores
<BLANKLINE>
Divide $q \\cdot k$ by $\\sqrt{d}$ before `keras.ops.softmax`:
<BLANKLINE>
$$
w = \\operatorname{softmax} (q / \\sqrt{d})
$$
<BLANKLINE>
"""

import ast
import pathlib
import re

from keras_tx_tools.site.plain_math import to_tex


def lesson_docstring(path):
    """The module docstring of the Python file `path` (an exercise), read without importing it."""
    source = pathlib.Path(path).read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    if not docstring:
        raise ValueError(f"{path} has no module docstring: an exercise opens with its lesson")
    return docstring


def lesson_markdown(docstring):
    """The Markdown page of a lesson docstring (see the module)."""
    title, _, body = docstring.strip().partition("\n")
    page, prose = [f"# {title.strip().rstrip('.')}", ""], []
    rows = body.splitlines()
    i = 0
    while i < len(rows):
        row, underline = rows[i], rows[i + 1].strip() if i + 1 < len(rows) else ""
        if row.strip() and re.fullmatch(r"=+|-+", underline) and len(underline) >= len(row.strip()):
            page += [_inline(prose), ""]
            prose = []
            if underline[0] == "-":  # the "Lesson" banner (===) goes: the whole page is the lesson
                page += [f"## {row.strip()}", ""]
            i += 2
        elif _TABLE_BORDER.fullmatch(row):
            table, i = _simple_table(rows, i)
            page += [_inline(prose), "", *table, ""]
            prose = []
        elif row.rstrip().endswith("::"):
            block, i = _literal_block(rows, i + 1)
            page += [_inline([*prose, row.rstrip()[:-1]]), "", *_block_markdown(block), ""]
            prose = []
        else:
            prose.append(row)
            i += 1
    page.append(_inline(prose))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(page).strip() + "\n")


_TABLE_BORDER = re.compile(r" *=+( +=+)+ *")


def _simple_table(rows, i):
    """The simple table whose top border is rows[i], as Markdown lines, and the index after it.

    Its columns are the runs of ``=`` of the border (or, in a row, the runs of two spaces or more);
    the row after the top border is the header, and the table ends at its third border.
    """
    columns = [match.span() for match in re.finditer(r"=+", rows[i])]
    starts = [start for start, _ in columns]
    cells = []
    borders = 1
    i += 1
    while i < len(rows) and borders < 3:
        if _TABLE_BORDER.fullmatch(rows[i]):
            borders += 1
        elif rows[i].strip():
            pieces = re.split(r"\s{2,}", rows[i].strip())  # a cell that runs past its column's border
            if len(pieces) != len(starts):
                pieces = [rows[i][start:end].strip() for start, end in zip(starts, [*starts[1:], None])]
            cells.append([_inline([piece]) for piece in pieces])
        i += 1
    header, *body = cells
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in body], i


def _literal_block(rows, i):
    """The block after a ``::`` at rows[i]: its lines, dedented, and the index after it."""
    while i < len(rows) and not rows[i].strip():
        i += 1
    indent = len(rows[i]) - len(rows[i].lstrip()) if i < len(rows) else 0
    block = []
    while i < len(rows) and (not rows[i].strip() or len(rows[i]) - len(rows[i].lstrip()) >= indent > 0):
        block.append(rows[i][indent:])
        i += 1
    return [row for row in block if row.strip()], i


def _block_markdown(block):
    """A literal block: display math when every line is a formula (comments aside), else code."""
    formulas = [to_tex(line.split("#")[0].strip()) for line in block]
    if not block or not all(formulas):
        return ["```text", *block, "```"]
    comments = [line.partition("#")[2].strip() for line in block]
    rows = [tex + (rf" \quad \text{{{comment}}}" if comment else "") for tex, comment in zip(formulas, comments)]
    if len(rows) == 1:
        return ["$$", rows[0], "$$"]
    aligned = [row.replace(" = ", " &= ", 1) for row in rows]  # under each other at the first equals sign
    return ["$$", r"\begin{aligned}", " \\\\\n".join(aligned), r"\end{aligned}", "$$"]


def _inline(lines):
    """Lines of prose: ``spans`` that are formulas become math, the others code."""
    def span(match):
        tex = to_tex(match[1])
        return f"${tex}$" if tex else f"`{match[1]}`"

    return re.sub(r"``(.+?)``", span, "\n".join(lines).replace("$", r"\$"), flags=re.DOTALL)
