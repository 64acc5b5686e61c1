"""Plain-text math, as the lessons write it, turned into TeX for the documentation site.

The lessons are docstrings, read in a terminal, so their formulas are plain text:
``q_i . k_j``, ``Q @ K^T / sqrt(d)``, ``10000 ** (2i / dim)``. `to_tex` recognises a
formula by its vocabulary and returns its TeX; anything else (Python names, calls with
arguments like ``axis=keys``, lists of numbers) is code and gets `None`, so it stays
code on the page. A formula uses only:

* one-letter variables, optionally with a one-character subscript (``q_i``, ``T_k``; not
  ``c_proj``, a name in code), and the names in `NAMES`;
* numbers (``12,288`` with thousands commas; not ``1e-3``, which is code);
* the functions in `FUNCTIONS`; brackets; ``+ - * / // ** ^ @ = < > <= >= !=``, ``.`` as
  a dot product between spaces, and commas.

>>> to_tex("q_i . k_j")
'q_{i} \\\\cdot k_{j}'
>>> to_tex("Q @ K^T / sqrt(d)")
'Q K ^{\\\\top} / \\\\sqrt{d}'
>>> to_tex("sin(p / 10000 ** (2i / dim))")
'\\\\sin (p / 10000 ^{2 i / \\\\mathrm{dim}})'
>>> to_tex("V=50,257"), to_tex("(vocab_size, embed_dim)"), to_tex("[19, 14, 1]"), to_tex("c_proj")
('V = 50{,}257', None, None, None)
"""

import re

FUNCTIONS = {
    "sqrt": None,  # \sqrt{...}: takes its argument in braces
    "sin": r"\sin",
    "cos": r"\cos",
    "exp": r"\exp",
    "log": r"\log",
    "max": r"\max",
    "argmax": r"\operatorname{argmax}",
    "softmax": r"\operatorname{softmax}",
    "erf": r"\operatorname{erf}",
}
"""Functions a formula may call (or name), and their TeX."""

NAMES = {"pi": r"\pi", "dim": r"\mathrm{dim}", "PE": r"\mathrm{PE}"}
"""Multi-letter words that are quantities, not code."""

OPERATORS = {
    "**": None, "^": None,  # exponents: the operand becomes a superscript
    "*": r"\cdot", "@": "", "//": "/", " . ": r"\cdot", "/": "/", "+": "+", "-": "-", "=": "=",
    "<=": r"\le", ">=": r"\ge", "!=": r"\ne", "<": "<", ">": ">", ",": ",",
}

_TOKEN = re.compile(
    r"\s+\.\s+"                                   # a dot product: a dot between spaces
    r"|\d{1,3}(?:,\d{3})+(?![\d,])"               # 50,257
    r"|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"            # 64, 0.5, 1e-3
    r"|[A-Za-z]+(?:_[A-Za-z0-9]+)?\d*"            # q_i, PE, softmax, norm1
    r"|\*\*|//|<=|>=|!=|[-+*/^@=<>,()\[\]]"
    r"|\s+|."
)
_CLOSING = {"(": ")", "[": "]"}


def to_tex(text):
    """The TeX of the formula `text`, or None when `text` is not a formula (see the module)."""
    tokens = [token if not token.isspace() else None for token in _TOKEN.findall(text)]
    tokens = [" . " if token and token.strip() == "." and token != "." else token for token in tokens]
    tokens = [token for token in tokens if token is not None]
    if not any(_variable(token) for token in tokens):
        return None
    try:
        tex, end = _sequence(tokens, 0, closing=None)
    except ValueError:
        return None
    return tex if end == len(tokens) else None


def _variable(token):
    return bool(re.fullmatch(r"[A-Za-z](?:_[A-Za-z0-9])?", token)) or token in NAMES


def _sequence(tokens, i, closing):
    """TeX of tokens[i:] up to `closing` (or the end); returns (tex, index after it)."""
    parts = []
    while i < len(tokens) and tokens[i] != closing:
        tex, i = _item(tokens, i)
        parts.append(tex)
    if closing is not None:
        if i == len(tokens):
            raise ValueError("unclosed bracket")
        i += 1
    return " ".join(part for part in parts if part), i


def _item(tokens, i):
    """TeX of the item at tokens[i] (with its exponent, brackets or call); returns (tex, next index)."""
    token = tokens[i]
    if token in _CLOSING:
        inner, i = _sequence(tokens, i + 1, _CLOSING[token])
        return f"{token}{inner}{_CLOSING[token]}", i
    if token in ("**", "^"):
        if i + 1 == len(tokens):
            raise ValueError("an exponent without its operand")
        if tokens[i + 1] == "(":
            exponent, i = _sequence(tokens, i + 2, ")")
        elif tokens[i + 1] == "T":
            exponent, i = r"\top", i + 2
        else:
            exponent, i = _item(tokens, i + 1)
        return f"^{{{exponent}}}", i
    if token in OPERATORS:
        return OPERATORS[token], i + 1
    if token in FUNCTIONS:
        if FUNCTIONS[token] is None:
            if tokens[i + 1:i + 2] != ["("]:
                raise ValueError("sqrt without its argument")
            argument, i = _sequence(tokens, i + 2, ")")
            return rf"\sqrt{{{argument}}}", i
        return FUNCTIONS[token], i + 1
    if token in NAMES:
        return NAMES[token], i + 1
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?", token):
        return token.replace(",", "{,}"), i + 1
    if re.fullmatch(r"[A-Za-z]", token):
        return token, i + 1
    if re.fullmatch(r"[A-Za-z]_[A-Za-z0-9]", token):  # q_i; a longer subscript (c_proj) is a name in code
        return f"{token[0]}_{{{token[2]}}}", i + 1
    raise ValueError(f"not a formula: {token!r}")
