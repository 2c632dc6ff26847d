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

_LATEX = [
    (re.compile(r"\\[dt]frac(?![a-zA-Z])"), lambda m: "\\frac"),
    (re.compile(r"\\[dt]binom(?![a-zA-Z])"), lambda m: "\\binom"),
    # \left( -> (, \right. -> . ; sizing macros carry no meaning for matching
    (re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)[lr]?(?![a-zA-Z])"), ""),
    (re.compile(r"\\(?:displaystyle|textstyle|text|textbf|textit|mathrm|mathbf|mbox|operatorname)(?![a-zA-Z])"), ""),
    # spacing: \, \; \: \! \<space> \quad \qquad, and math delimiters \( \) \[ \]
    (re.compile(r"\\(?:[,;:! ()\[\]]|q?quad(?![a-zA-Z]))"), " "),
]
_PLAIN = re.compile(r"\\?[$~]")  # (escaped) dollars and non-breaking tildes
# spaces around a symbol go, except after a backslash ("\\ x" must not become the command "\\x")
_SYMBOL_SPACE = re.compile(r" ?([^\w\s\\]) ?| (?=\\)")

# LaTeX command | word (Unicode letters) | digit run | one operator or symbol character.
# Prose punctuation, braces, backslashes, `&` and quotes are not tokens.
TOKEN_RE = re.compile(r"\\[a-z]+|[^\W\d_]+|\d+|[^\w\s.,;:?'\"`{}\\&#@$~‘’“”…]|_")


def _canonical(text: str) -> str:
    """NFKC, LaTeX canonicalised, delimiters dropped, lower-cased (spacing left as is)."""
    text = unicodedata.normalize("NFKC", text)
    if "\\" in text:  # most prose rows have no LaTeX: skip five regex passes
        for pattern, repl in _LATEX:
            text = pattern.sub(repl, text)
    return _PLAIN.sub(" ", text).lower()


def normalise(text: str) -> str:
    """Canonical form of `text`: also whitespace collapsed, and none around symbols, so
    "x + (y)" and "x+(y)" are the same text."""
    return _SYMBOL_SPACE.sub(lambda m: m.group(1) or "", " ".join(_canonical(text).split()))


def tokens(text: str) -> list[str]:
    """Tokens of the normalised `text` (the unit of exact keys, n-grams and MinHash shingles).

    Equal to `TOKEN_RE.findall(normalise(text))`; whitespace never changes tokens, so the
    collapsing steps are skipped on this hot path.
    """
    return TOKEN_RE.findall(_canonical(text))
