"""Math-aware text normalisation and tokenisation shared by every matching stage.

General-purpose decontaminators lowercase, drop punctuation *and* fold digits to 0 or strip
operators, so "2+3=5" and "7-1=6" become the same n-gram and math problems collide. Here digits
and operators survive; what goes is only what does not change the problem: `$`/`\\(`/`\\[`
delimiters, LaTeX spacing macros, `\\left`/`\\right`, display-size variants (`\\dfrac`, `\\tfrac`,
`\\dbinom`), text-mode wrappers, braces, prose punctuation, case and whitespace. Tokens are LaTeX
commands, words, digit runs and single operator symbols, so "x+y" and "x + y" tokenise alike.
"""

from __future__ import annotations

import re
import unicodedata

_REPLACEMENTS = [
    (re.compile(r"\\[dt]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![a-zA-Z])"), r"\\binom"),
    # \left( -> (, \right. -> . ; sizing macros carry no meaning for matching
    (re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)[lr]?(?![a-zA-Z])"), ""),
    (re.compile(r"\\(?:displaystyle|textstyle|text|textbf|textit|mathrm|mathbf|mbox|operatorname)(?![a-zA-Z])"), ""),
    # spacing: \, \; \: \! \<space> \quad \qquad ~
    (re.compile(r"\\(?:[,;:! ]|q?quad(?![a-zA-Z]))|~"), " "),
    # math delimiters: \( \) \[ \] and (escaped) dollars
    (re.compile(r"\\[()\[\]]|\\?\$"), " "),
]

_SYMBOL_SPACE = re.compile(r" ?([^\w\s]) ?")

# LaTeX command | word (Unicode letters) | digit run | one operator or symbol character.
# Prose punctuation, braces, backslashes, `&` and quotes are not tokens.
TOKEN_RE = re.compile(r"\\[a-z]+|[^\W\d_]+|\d+|[^\w\s.,;:?'\"`{}\\&#@$~‘’“”…]|_")


def normalise(text: str) -> str:
    """Canonical form of `text`: NFKC, LaTeX-normalised, case-folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    for pattern, repl in _REPLACEMENTS:
        text = pattern.sub(repl, text)
    text = " ".join(text.lower().split())
    return _SYMBOL_SPACE.sub(r"\1", text)  # "x + (y)" and "x+(y)" are the same text


def tokens(text: str) -> list[str]:
    """Tokens of the normalised `text` (the unit of exact keys, n-grams and MinHash shingles)."""
    return TOKEN_RE.findall(normalise(text))
