"""Rule-based readings of answers as models and datasets write them, before any LaTeX parsing.

Why a module of its own: math-verify reads plain text (`1 000`, `1,22`, `1.2e4`) with its
`ExprExtractionConfig`, which hands the text to sympy's `parse_expr`, i.e. to `eval`. Model text must
never reach an evaluator, so these forms are read here by regular expressions over digits,
separators, signs and a few words, and rewritten as plain LaTeX numbers (exact: `Fraction` and
`Decimal`, never floats). Each rewrite names its rule, which goes into the verdict's evidence.

Conventions (docs/verifiers.md gives the reasons):
- `1,000` / `1 000` / `10,\\!080` / `25\\,000` are thousands separators (groups of exactly three);
  in a candidate compared with a single value, `1,22` and `3,5` (one, two or four-plus digits after a
  single comma) are decimal commas and `1.000,5` is European (dot thousands, comma decimals); in a
  reference, and against a list, a comma separates values (MATH-500's `-2,1` is two roots).
- a currency sign before or after the number and a word unit after it are dropped (`$18.90`,
  `1,000.99€`, `45 dollars`, `12 cm`); units are not converted (`2 m` is not `200 cm`).
- `2 1/2` is the mixed number 5/2 (an integer, one space, a fraction), as in plain-text answers.
- `1.2e4`, `3.5E-4`, `5e+6` are E-notation.
- `101_2`, `FF_{16}` are numerals in the subscript's base and are evaluated, never dropped.
- inside a trig function a degree sign means degrees (`\\sin 30^\\circ` = 1/2); elsewhere it is a
  unit (`30^\\circ` = 30).
- a choice letter may carry its option's text (`(B) 12`, `C) 1/2`, `\\textbf{(C)}\\ 5`).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import NamedTuple

MAX_EXPONENT = 400  # E-notation exponents beyond this are left alone (the digit guard applies)

_CURRENCY = r"(?:\\\$|\$|€|£|¥|₹|\\euro|USD|EUR|US\$)"
# a thousands separator: comma (optionally with LaTeX's \! spacing), a space, LaTeX thin spaces, {,}
_SEP = r"(?:,\s*\\!\s*|,|\{,\}|\\[,;:!]\s*|\\ |~|[ \u00a0\u2009\u202f'])"
_WORD_UNIT = r"(?:[A-Za-z]{2,}\.?(?:[ \-][A-Za-z]{2,}\.?){0,3})"
_TEXT_UNIT = r"(?:\\(?:text|mbox|mathrm|textrm)\s*\{[^{}]*\})"
_UNIT = rf"(?:\s*(?:{_TEXT_UNIT}|{_WORD_UNIT})(?:\s*(?:\^\s*\{{?[23]\}}?|²|³))?)"
# words that are mathematics, not units: "3 pi" is 3*pi, "2 or 3" is a hedge
_NOT_UNITS = {
    "pi",
    "sqrt",
    "or",
    "and",
    "plus",
    "minus",
    "times",
    "over",
    "divided",
    "by",
    "to",
    "root",
    "squared",
    "cubed",
    "percent",
    "infinity",
    "inf",
    "pm",
    "mod",
    "cdot",
    "frac",
    "dfrac",
    "tfrac",
    "log",
    "ln",
    "sin",
    "cos",
    "tan",
    "sec",
    "csc",
    "cot",
    "exp",
    "arcsin",
    "arccos",
    "arctan",
    "degrees",
    "degree",
    "deg",
    "radians",
    "radian",
    "rad",
    "circ",
    "neq",
    "ne",
    "le",
    "ge",
    "leq",
    "geq",
    "lt",
    "gt",
    "in",
}

_NUMBER = re.compile(
    rf"^\s*(?P<cur1>{_CURRENCY})?\s*(?P<sign>[-+\u2212])?\s*(?P<cur2>{_CURRENCY})?\s*"
    r"(?:(?P<mixed>\d+)\s+(?P<mnum>\d+)\s*/\s*(?P<mden>\d+)"
    r"|(?P<euro>\d{1,3}(?:\.\d{3})+,\d+)"
    rf"|(?P<grouped>[1-9]\d{{0,2}}(?:(?P<sep>{_SEP})\d{{3}})(?:(?P=sep)\d{{3}})*(?:\.\d+)?)"
    r"|(?P<deccomma>\d+,(?:\d{1,2}|\d{4,})|0,\d+)"
    r"|(?P<enote>(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+)"
    r"|(?P<frac>\d+\s*/\s*\d+)"
    r"|(?P<plain>\d+\.?\d*|\.\d+))"
    rf"\s*(?P<cur3>{_CURRENCY})?(?P<percent>\s*(?:\\%|%|\s+percent))?(?P<unit>{_UNIT})?\s*\.?\s*$"
)


class Reading(NamedTuple):
    """An answer rewritten by rule: the LaTeX to parse, and the rule that fired."""

    latex: str
    rule: str


def _unit_ok(unit: str | None) -> bool:
    if not unit:
        return True
    if re.match(r"\s*\\(?:text|mbox|mathrm|textrm)", unit):
        return True
    words = re.findall(r"[A-Za-z]+", unit)
    return bool(words) and not any(w.lower() in _NOT_UNITS for w in words)


def plain_number(answer: str, decimal_comma: bool = True) -> Reading | None:
    """A plain-text number (separators, decimal comma, currency, unit, mixed number, E-notation) as
    an exact LaTeX number, or None when `answer` is not one. Only digits are read; nothing is run.

    `decimal_comma=False` reads `-2,1` as it is (a list: MATH-500 writes the roots -2 and 1 so), which
    is how a reference answer is read; a candidate's `1,22` is 1.22 only against a single value."""
    m = _NUMBER.match(answer)
    if m is None or not _unit_ok(m.group("unit")):
        return None
    if not decimal_comma and (m.group("deccomma") or m.group("euro")):
        return None
    negative = (m.group("sign") or "") in ("-", "\u2212")
    rule = "plain number"
    if m.group("mixed"):
        den = int(m.group("mden"))
        if den == 0:
            return None
        value = Fraction(int(m.group("mixed"))) + Fraction(int(m.group("mnum")), den)
        text, rule = f"\\frac{{{value.numerator}}}{{{value.denominator}}}", "mixed number"
    elif m.group("euro"):
        text, rule = m.group("euro").replace(".", "").replace(",", "."), "decimal comma"
    elif m.group("grouped"):
        sep = m.group("sep")
        text = m.group("grouped").replace(sep, "") if sep else m.group("grouped")
        rule = "thousands separators"
    elif m.group("deccomma"):
        text, rule = m.group("deccomma").replace(",", "."), "decimal comma"
    elif m.group("enote"):
        try:
            value_d = Decimal(m.group("enote"))
        except InvalidOperation:
            return None
        if abs(value_d.adjusted()) > MAX_EXPONENT:
            return None
        text, rule = format(value_d, "f"), "E-notation"
    elif m.group("frac"):
        num, den = (s.strip() for s in m.group("frac").split("/"))
        text = f"\\frac{{{num}}}{{{den}}}"
    else:
        text = m.group("plain")
        if text.endswith("."):
            text = text[:-1]
    if m.group("cur1") or m.group("cur2") or m.group("cur3"):
        rule += ", currency"
    if m.group("unit"):
        rule += ", unit dropped"
    if negative:
        text = f"-{text}"
    if m.group("percent"):
        text += "\\%"
    return Reading(text, rule)


# prose: a word of three or more letters outside math spans, LaTeX commands and \text{} (connectives
# aside: "2 or 3" is a hedge to parse, not prose to take the last number of)
_MATH_SPANS = re.compile(r"\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[A-Za-z]+\s*\{[^{}]*\}|\\[A-Za-z]+", re.S)
_WORD = re.compile(r"[A-Za-z]{3,}")
_CONNECTIVES = {"and", "nor", "but", "then", "also"}
_PROSE_NUMBER = re.compile(
    r"(?<![\w.^_{\\])[-\u2212]?(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:[.,]\d+)?(?:\s*/\s*\d+)?(?:\s*%)?(?!\d)"
)


def prose_number(answer: str) -> Reading | None:
    """The last number of an answer written as prose ("Jane started growing Sphere 3 hours ago",
    "The volume of $ABCDEFGH$ is 120"), read as a plain number; None when `answer` is not prose or
    has no number. math-verify reads such answers through `parse_expr`; this reads digits only."""
    words = [w.lower() for w in _WORD.findall(_MATH_SPANS.sub(" ", answer))]
    if not words or all(w in _CONNECTIVES or w in _NOT_UNITS for w in words):
        return None
    found = _PROSE_NUMBER.findall(answer)
    if not found:
        return None
    reading = plain_number(found[-1].replace(" ", ""))
    return Reading(reading.latex, "last number of a prose answer") if reading else None


_BASE = re.compile(r"^\s*\(?([0-9A-Za-z]+)\)?_\s*\{?\s*(\d{1,2})\s*\}?\s*$")


class BaseNumeral(NamedTuple):
    value: int
    digits: str
    base: int


def base_numeral(answer: str) -> BaseNumeral | None:
    """`101_2`, `FF_{16}`, `(52)_8`: a numeral with an explicit base (2-36) whose digits fit it."""
    m = _BASE.match(answer.strip().strip("$"))
    if m is None:
        return None
    digits, base = m.group(1), int(m.group(2))
    if not 2 <= base <= 36:
        return None
    try:
        return BaseNumeral(int(digits, base), digits, base)
    except ValueError:
        return None


def read_in_base(answer: str, base: int) -> int | None:
    """A bare numeral (`52`, `FF`) read in `base`, or None when it is not one."""
    s = answer.strip().strip("$").strip()
    if not re.fullmatch(r"[0-9A-Za-z]+", s):
        return None
    try:
        return int(s, base)
    except ValueError:
        return None


_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)\b|\\operatorname\{(?:sin|cos|tan|cot|sec|csc)\}")
_DEGREE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\degree)")


def degrees(answer: str) -> Reading | None:
    """Degree signs rewritten: inside an expression with a trig function they are degrees
    (`\\sin 30^\\circ` -> `\\sin \\frac{30\\pi}{180}`); `°` elsewhere becomes `^\\circ`, the unit
    the parser already drops. None when there is no degree sign."""
    if not _DEGREE.search(answer) and "°" not in answer:
        return None
    if _TRIG.search(answer):
        return Reading(
            _DEGREE.sub(lambda m: f"{{\\frac{{{m.group(1)}\\pi}}{{180}}}}", answer), "degrees inside a trig function"
        )
    if "°" in answer:
        return Reading(answer.replace("°", "^\\circ"), "degree sign")
    return None


_CHOICE_REF = re.compile(r"^\s*(?:\\text(?:bf)?\s*\{\s*)?\(?\s*([A-E])\s*\)?\s*\}?\s*$")
_CHOICE_CAND = re.compile(
    r"^\s*(?:\\text(?:bf)?\s*\{\s*)?(?:\(\s*([A-Ea-e])\s*\)|([A-E])\s*[):.](?!\d))\s*\}?(?:\s|\\ |~|$)"
    r"|^\s*(?:\\text(?:bf)?\s*\{\s*)?([A-E])\s*\}?\s*$"
)


def choice_reference(answer: str) -> str | None:
    """The letter of a multiple-choice reference (`B`, `(B)`, `\\text{(B)}`), A-E, upper case."""
    m = _CHOICE_REF.match(answer.strip().strip("$"))
    return m.group(1) if m else None


def choice_candidate(answer: str) -> str | None:
    """The letter a candidate chose, with or without its option's text (`(B) 12`, `C) 1/2`,
    `D: ...`, `\\textbf{(C)}\\ 5`, `B`), or None."""
    s = answer.strip().strip("$").strip()
    s = re.sub(r"^\\textbf\s*\{\s*(\([A-Ea-e]\))\s*\}", r"\1", s)
    m = _CHOICE_CAND.match(s) or re.match(r"^\s*([A-E])\s*:\s", s)
    if m is None:
        return None
    return next(g for g in m.groups() if g).upper()
