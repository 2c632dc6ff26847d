"""Functions a row defines, in any common language, by name: a code task keeps its name across languages.

A benchmark code item translated into C, JavaScript, Java, Go or Rust ("Here is the C version: int
x_or_y(int n, int x, int y) {...}") cannot run in the Python sandbox, and its comments paraphrase
the docstring loosely (MiniLM puts such a row at 0.6-0.75 from its item). It usually keeps the
function's name, in that language's case style (`evenOddCount` for `even_odd_count`). A row that
defines a function with an item's entry-point name, and whose text is still near that item
(`--semantic-code-floor`), is that item's task unless execution says otherwise
(`ParaphraseDecider.code_neighbour`). Names are compared case- and underscore-blind; `main` and
language keywords are never names.
"""

from __future__ import annotations

import re

_DEFINITIONS = (
    re.compile(r"\bdef\s+([A-Za-z_]\w*)\s*\("),  # Python
    re.compile(r"\bfunction\s*\*?\s*([A-Za-z_$][\w$]*)\s*\("),  # JavaScript, PHP
    re.compile(r"\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|\w+\s*=>)"),
    re.compile(r"\b(?:func|fn|fun|sub)\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)\s*[(<]"),  # Go, Rust, Kotlin, Perl
    # C, C++, Java, C#: a return type, the name, parameters, then the body's brace
    re.compile(
        r"\b[A-Za-z_][\w:<>,\[\]]*[\s*&]+([A-Za-z_]\w*)\s*\([^;{}()]*(?:\([^()]*\)[^;{}()]*)*\)\s*(?:const\s*)?\{"
    ),
)
_NOT_NAMES = frozenset(
    "main if for while switch return sizeof catch else do new delete typeof function elif def".split()
)


def normalise(name: str) -> str:
    """`evenOddCount`, `even_odd_count` and `EvenOddCount` are one name."""
    return name.replace("_", "").replace("$", "").lower()


def defined_functions(text: str) -> set[str]:
    """Normalised names of the functions `text` defines (module docstring)."""
    names = {normalise(m) for pattern in _DEFINITIONS for m in pattern.findall(text)}
    return {n for n in names if n and n not in _NOT_NAMES}
