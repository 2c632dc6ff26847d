"""Minimal-edit look-alikes: a near copy of an item that flips one word or operator.

The commonest hand-made look-alike copies a benchmark item and changes what it asks by one word:
"his expenditure was $60 less" -> "$60 more", "the largest possible real part" -> "the smallest",
`58_9 - 18_9` -> `58_9 + 18_9`. Its numbers, its story and nearly all its n-grams are the item's,
so neither the quantity signature nor the embedding nor the n-gram stage can tell it from a copy;
without an answer to compare, it was removed as the item. A rephraser never does this: it keeps
the problem, so it keeps every polarity ("less" may become "fewer" or "cheaper", never "more").

`flipped(row, item)` is True when the two texts are near copies (token similarity >= `NEAR`) and
one of the blocks where they differ swaps a word for its opposite (a pole of `_OPPOSITES`: more /
less, largest / smallest, sum / difference, ...) or one arithmetic operator for another. Only near
copies are compared: in a real rewrite, "more" in one sentence and "less" in another say nothing.
"""

from __future__ import annotations

import difflib
import re

NEAR = 0.8  # token similarity (difflib ratio) from which two texts are near copies

# each group: two poles; a word of one pole replaced by a word of the other is a flip
_OPPOSITES: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(a.split()), frozenset(b.split()))
    for a, b in (
        ("more greater larger bigger higher extra additional", "less fewer smaller lower cheaper"),
        ("largest greatest biggest highest maximum max most", "smallest least lowest minimum min fewest"),
        ("longest tallest oldest heaviest fastest", "shortest youngest lightest slowest"),
        ("longer taller older heavier faster later", "shorter younger lighter slower earlier"),
        ("increase increased increases rise rises gain gains", "decrease decreased decreases fall falls loss"),
        ("add adds added plus sum", "subtract subtracts subtracted minus difference"),
        ("multiply multiplied product times", "divide divided quotient"),
        ("before", "after"),
        ("first", "last"),
        ("even", "odd"),
        ("positive", "negative"),
        ("above", "below"),
        ("inside", "outside"),
        ("win wins won", "lose loses lost"),
        ("buy buys bought", "sell sells sold"),
        ("maximize maximise maximum", "minimize minimise minimum"),
        ("ascending increasing", "descending decreasing"),
        ("profit", "loss"),
        ("left", "right"),
    )
)
_OPERATORS = frozenset("+ - * / × ÷ ·".split())
_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?|[+\-*/×÷·^=<>]")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("\u2212", "-").replace("\\cdot", "·").replace("\\times", "×"))


def _opposed(a: str, b: str) -> bool:
    if a in _OPERATORS and b in _OPERATORS:
        return a != b
    return any((a in x and b in y) or (a in y and b in x) for x, y in _OPPOSITES)


def flipped(row: str, item: str) -> bool:
    """The row is a near copy of the item with one word or operator swapped for its opposite."""
    r, i = _tokens(row), _tokens(item)
    if not r or not i:
        return False
    matcher = difflib.SequenceMatcher(None, r, i, autojunk=False)
    if matcher.ratio() < NEAR:
        return False
    for op, r0, r1, i0, i1 in matcher.get_opcodes():
        if op == "replace" and r1 - r0 <= 3 and i1 - i0 <= 3:
            if any(_opposed(a, b) for a in r[r0:r1] for b in i[i0:i1]):
                return True
    return False
