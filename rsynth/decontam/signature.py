"""Quantity signatures: what a rephrased benchmark problem keeps when its words change.

An LLM that rewrites a seed problem keeps the problem, so it keeps its quantities ("16 eggs, eats
three, bakes four, $2 each") and what is asked ("dollars per day"), while every n-gram may change.
A template sibling ("20 eggs, eats five, ...") keeps the words and changes the quantities. The
signature makes that difference measurable:

* `numbers`: the multiset of quantities, normalised so that a rewrite does not change them:
  number words become digits ("three" -> 3, "twenty-five" -> 25, "a dozen" -> 12, "twice" -> 2),
  `1,000` and `1{,}000` -> 1000, `2.50` -> 5/2, `\\frac{3}{4}` and `3/4` -> 3/4, `50%` and
  `50 percent` -> 1/2, a sign kept where a minus is unary (`f(-2)`). Exponents and LaTeX numbers are
  numbers like any other (`x^{10}` -> 10). Code items contribute their function names (`fn:name`),
  not the numbers of their examples (doctests and asserts are dropped: rewrites change them freely).
* `ask`: content words of the question sentence (the last one with `?`, else the last imperative
  "Find/Compute/What ..."), lightly stemmed, so "how many eggs ... a week" and "how much money ...
  a day" can be told apart even when the numbers agree.

Agreement between two signatures is an IDF-weighted Dice coefficient of their distinct quantities: sharing a rare
number (242, 2024) is strong evidence, sharing a 2 is weak. Weights come from document frequency
over the reference items (`SignatureIndex`).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_WORDS = {
    "dozen": 12,
    "twice": 2,
    "double": 2,
    "doubles": 2,
    "triple": 3,
    "triples": 3,
    "thrice": 3,
    "half": Fraction(1, 2),
    "quarter": Fraction(1, 4),
    "quarters": Fraction(1, 4),
    "halves": Fraction(1, 2),
    "couple": 2,
    "pair": 2,
    # ordinals ("the third deposit" / "year three"; "first" and "second" are too often not quantities)
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "twentieth": 20,
    "hundredth": 100,
    "thousandth": 1000,
    # polygons: "a regular hexagon" and "a regular 6-gon" are the same quantity
    "triangle": 3,
    "quadrilateral": 4,
    "pentagon": 5,
    "hexagon": 6,
    "heptagon": 7,
    "octagon": 8,
    "nonagon": 9,
    "decagon": 10,
    "dodecagon": 12,
}
_NUMBER_WORDS = frozenset(
    [*_UNITS, *_TENS, *_SCALES, *_WORDS, "thirds", "fourths", "fifths", "sixths", "eighths", "tenths"]
    + "sevenths ninths elevenths twelfths twentieths hundredths thousandths".split()
)
_ALPHA = re.compile(r"[A-Za-z]+")
_JOIN = re.compile(r"[\s-]*(?:and\s+(?:a\s+)?)?", re.IGNORECASE)  # what may separate the words of one number

# LaTeX: \frac{a}{b} (and \dfrac, \tfrac) of plain numbers becomes a/b; thousands braces and spacing go
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}")
_FRAC_SHORT = re.compile(r"\\[dt]?frac\s*(\d)(\d)")
_LATEX_NOISE = re.compile(r"\\[,;:!]|\\(?:text|mathrm|textbf|mbox)\b|\\?\$")
_NUMBER = re.compile(
    r"(?P<neg>-\s*)?"  # a sign only after an opening bracket, comma, = or at the start (checked in numbers())
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<den>\d+)(?!\d|\.\d))?"
    r"(?P<pct>\s*(?:\\?%|percent\b|per cent\b))?",  # as _PERCENT
    re.IGNORECASE,
)
_PERCENT = re.compile(r"\s*(?:\\?%|percent\b|per cent\b)", re.IGNORECASE)
_DEF = re.compile(r"\bdef\s+([A-Za-z_]\w*)\s*\(")
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_SNAKE_CALL = re.compile(
    r"(?<![\\\w])(?!(?:log|ln|lg|exp|sin|cos|tan|sqrt)_[a-z0-9]{1,3}\s*\()([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\s*\("
)  # has_close_elements( in prose, not \log_x( nor a plain-text log_x(y^x): subscripted maths is no function
_QUOTES = ('"""', "'''")
_BUILTINS = frozenset(
    "set list sorted tuple dict str int float abs len math isclose round sum max min all any print range assert type".split()
)
_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z$\\(])|\n{2,}")
_IMPERATIVE = re.compile(
    r"^\s*(?:find|compute|determine|calculate|evaluate|what|how|express|simplify|solve|write|return|give|which|show)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z]+")
_WH = re.compile(r"\b(?:how|what|which|who|whom|when|where|why|find|compute|determine|calculate|evaluate)\b", re.I)
STOP_WORDS = frozenset(
    """a an the of in on at to for from by with and or if is are was were be been being do does did will would can could should
    how many much what which who whom whose when where why that this these those it its it's he she they them their his her him
    you your we our i me my there here than then so as all any each every per total altogether combined together find compute
    determine calculate evaluate express answer value number amount simplify write return give show given let use using into
    after before during left remaining still also only just now more less get got has have had make makes made need needs""".split()
)
_SYNONYMS = {
    "money": "dollar",
    "cost": "dollar",
    "costs": "dollar",
    "pay": "dollar",
    "paid": "dollar",
    "spend": "dollar",
    "spent": "dollar",
    "earn": "dollar",
    "earns": "dollar",
    "earned": "dollar",
    "cent": "dollar",
    "price": "dollar",
    "profit": "dollar",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "yearly": "year",
    "annually": "year",
    "annual": "year",
    "hourly": "hour",
    "percentage": "percent",
    "fraction": "percent",
    "minute": "time",
    "hour": "time",
    "second": "time",
    "long": "time",
    "far": "distance",
    "mile": "distance",
    "kilometer": "distance",
    "meter": "distance",
}


# after a count word, these are denominators ("three quarters" -> 3/4, "two thirds" -> 2/3, "one tenth"),
# not ordinals ("the third deposit" -> 3)
_DENOMINATORS = {
    "half": 2,
    "halves": 2,
    "third": 3,
    "thirds": 3,
    "quarter": 4,
    "quarters": 4,
    "fourth": 4,
    "fourths": 4,
    "fifth": 5,
    "fifths": 5,
    "sixth": 6,
    "sixths": 6,
    "seventh": 7,
    "sevenths": 7,
    "eighth": 8,
    "eighths": 8,
    "ninth": 9,
    "ninths": 9,
    "tenth": 10,
    "tenths": 10,
    "eleventh": 11,
    "elevenths": 11,
    "twelfth": 12,
    "twelfths": 12,
    "twentieth": 20,
    "twentieths": 20,
    "hundredth": 100,
    "hundredths": 100,
    "thousandth": 1000,
    "thousandths": 1000,
}
_A_FRACTION = re.compile(
    r"\b(?:a|one)\s+(half|third|quarter|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|twentieth"
    r"|hundredth|thousandth)\b",
    re.IGNORECASE,
)
_AND_A_HALF = re.compile(r"(\d+)\s+and\s+a\s+half\b", re.IGNORECASE)
_AFTER_COUNT_AND = re.compile(
    r"\b(?:" + "|".join([*_UNITS, *_TENS]) + r")\s+and\s+$", re.IGNORECASE
)  # "one and a half"
_DIGIT_WORD = r"(?:zero|one|two|three|four|five|six|seven|eight|nine)"
_POINT = re.compile(
    r"\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+point\s+("
    + _DIGIT_WORD
    + r"(?:\s+"
    + _DIGIT_WORD
    + r")*)\b",
    re.IGNORECASE,
)
# digits named in the plural, each a quantity of its own (not "ones" or "tens": "the ones he likes")
_PLURAL_DIGITS = {"zeros": 0, "zeroes": 0, "twos": 2, "threes": 3, "fours": 4, "fives": 5, "sixes": 6, "sevens": 7}
_PLURAL_DIGITS |= {"eights": 8, "nines": 9}
_PLURAL_DIGIT = re.compile(r"\b(" + "|".join(_PLURAL_DIGITS) + r")\b", re.IGNORECASE)
_COUPLE = re.compile(r"\ba\s+(couple|pair)\s+of\b", re.IGNORECASE)


def _word_value(run: str) -> Fraction | None:
    """Value of a run of number words ("twenty five", "two hundred and ten", "a dozen" -> 12,
    "three quarters" -> 3/4, "one and a half" -> 3/2)."""
    total, current, seen, after_and = Fraction(0), Fraction(0), False, False
    for w in re.split(r"[\s-]+", run.lower()):
        if w in ("and", ""):
            after_and = after_and or w == "and"
            continue
        if w == "a":
            continue
        seen = True
        if after_and and w in _DENOMINATORS and current:  # "one and a half": 1 + 1/2
            current += Fraction(1, _DENOMINATORS[w])
        elif current and w in _DENOMINATORS and current.denominator == 1 and current < 20:  # "three quarters"
            current = Fraction(current) / _DENOMINATORS[w]
        elif w not in _WORDS and w in _DENOMINATORS:  # "thirds" with no count before it
            current = Fraction(1, _DENOMINATORS[w])
        elif w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w in _SCALES:
            scale = _SCALES[w]
            if scale == 100:
                current = (current or 1) * 100
            else:
                total += (current or 1) * scale
                current = Fraction(0)
        elif w == "dozen":
            current = (current or 1) * 12
        else:
            current = (current or 1) * _WORDS[w]
        after_and = False
    return Fraction(total + current) if seen else None


def _word_runs(text: str) -> list[tuple[int, int, str]]:
    """(offset, words) of each run of adjacent number words ("two hundred and ten" is one run)."""
    runs: list[tuple[int, int, str]] = []
    # one cheap scan and a set lookup: a big alternation is 20x slower. An ASCII text is lowered once
    # (same offsets, same letters); any other is lowered word by word ("K", the Kelvin sign, lowers to "k")
    low = text.lower() if text.isascii() else None
    for m in _ALPHA.finditer(low if low is not None else text):
        if (m.group(0) if low is not None else m.group(0).lower()) not in _NUMBER_WORDS:
            continue
        if runs and _JOIN.fullmatch(text[runs[-1][1] : m.start()]):
            start, _, words = runs[-1]
            runs[-1] = (start, m.end(), text[start : m.end()])
        else:
            runs.append((m.start(), m.end(), text[m.start() : m.end()]))
    return runs


# Units a rewrite converts consistently (hours to minutes, km to m, pounds to ounces): a quantity
# followed by one of them is stored in the family's base unit, so "4 hours" and "240 minutes" are
# the same element. Imperial and metric lengths stay apart (a rewrite into the other system gives
# non-round numbers and is rare); ambiguous one-letter units ("m", "h", "in", "l") are left alone.
_UNIT_FACTORS: dict[str, tuple[str, Fraction]] = {}  # noqa: E305
for _names, _family, _factor in (
    ("second seconds sec secs", "s", 1),
    ("minute minutes min mins", "s", 60),
    ("hour hours hr hrs", "s", 3600),
    ("day days", "s", 86400),
    ("week weeks", "s", 604800),
    ("millimeter millimeters millimetre millimetres mm", "mm", 1),
    ("centimeter centimeters centimetre centimetres cm", "mm", 10),
    ("meter meters metre metres", "mm", 1000),
    ("kilometer kilometers kilometre kilometres km", "mm", 10**6),
    ("inch inches", "in", 1),
    ("foot feet ft", "in", 12),
    ("yard yards yd yds", "in", 36),
    ("mile miles mi", "in", 63360),
    ("milligram milligrams mg", "g", Fraction(1, 1000)),
    ("gram grams", "g", 1),
    ("kilogram kilograms kg kgs", "g", 1000),
    ("ounce ounces oz", "oz", 1),
    ("pound pounds lb lbs", "oz", 16),
    ("ton tons", "oz", 32000),
    ("milliliter milliliters millilitre millilitres ml", "ml", 1),
    ("liter liters litre litres", "ml", 1000),
):
    for _name in _names.split():
        _UNIT_FACTORS[_name] = (_family, Fraction(_factor))
_UNIT = re.compile(r"[ \t]*-?[ \t]*(?:of[ \t]+)?(?P<a>an?[ \t]+)?(?:square[ \t]+|cubic[ \t]+)?([A-Za-z]+)\b")
_PER = re.compile(r"[ \t]*(?:per|an?|/|every|each)[ \t]*([A-Za-z]+)\b")
_COMPOUND_H = re.compile(r"[ \t]*\d+[ \t]*(?:min|mins|minutes?|m)\b")  # "h" is an hour only before minutes
_MORE_LESS = re.compile(
    r"[ \t]*(?:(more|greater|larger|higher|bigger|longer|taller|heavier|faster|extra|increase|raise|markup)"
    r"|less|fewer|smaller|lower|cheaper|shorter|lighter|slower|off|discount|decrease|reduction)\b",
    re.IGNORECASE,
)
_COMPOUND_JOIN = re.compile(r"[ \t]*(?:,[ \t]*)?(?:and[ \t]+)?")
_RATES = {"mph": ("in", Fraction(63360), "s", Fraction(3600)), "kph": ("mm", Fraction(10**6), "s", Fraction(3600))}


def _in_base_unit(text: str, end: int, value: Fraction) -> tuple[Fraction, tuple[str, Fraction, int] | None]:
    """`value` in its unit family's base unit when a unit word follows it at `end` ("48-inch",
    "half a foot", "2 hours"), else unchanged; with (family, factor, end of the unit word) when it
    was converted (to add up compounds: "2 hours and 24 minutes"). Square and cubic units are left alone."""
    m = _UNIT.match(text, end)
    if m is None:
        return value, None
    word = m.group(2).lower()
    if word in _RATES:  # "18 mph": a speed in base units per second
        return value * _RATES[word][1] / _RATES[word][3], None
    unit = _UNIT_FACTORS.get(word)
    if unit is None and word == "h" and _COMPOUND_H.match(text, m.end()):  # "2 h 24 min"
        unit = _UNIT_FACTORS["hour"]
    if unit is None or "square" in m.group(0) or "cubic" in m.group(0) or (m.group("a") and value >= 1):
        return value, None  # "half a foot" is 6 inches; "$10 a day" and "twice a day" are rates
    per = _PER.match(text, m.end())
    below = _UNIT_FACTORS.get(per.group(1).lower()) if per else None
    if below is not None and below[0] != unit[0]:  # "18 miles per hour" = "0.3 miles per minute"
        return value * unit[1] / below[1], None
    return value * unit[1], (unit[0], unit[1], m.end())


def _relative(text: str, end: int, share: Fraction) -> Fraction | None:
    """The factor a percentage change states ("50% more" = 3/2 times, "25% off" = 3/4 of), which a
    rewrite may give instead of the percentage; None for a plain percentage."""
    m = _MORE_LESS.match(text, end)
    if m is None:
        return None
    return 1 + share if m.group(1) else 1 - share


def _add_compounds(found: list[tuple[int, Fraction, tuple[str, Fraction, int] | None]], text: str) -> list:
    """Adds up compound quantities: "2 hours and 24 minutes", "5 feet 3 inches", "1 h 30 min" are
    one quantity (8,640 s; 63 in), as a rewrite into one unit ("144 minutes") states it. Parts merge
    when they are of one family, in decreasing units, and only a comma or "and" separates them."""
    out: list = []
    for start, value, unit in found:
        if out and unit is not None and out[-1][2] is not None:
            _, prev_value, prev = out[-1]
            if prev[0] == unit[0] and unit[1] < prev[1] and _COMPOUND_JOIN.fullmatch(text, prev[2], start):
                out[-1] = (out[-1][0], prev_value + value, unit)
                continue
        out.append((start, value, unit))
    return out


def _canon(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _drop_examples(text: str, names: Sequence[str]) -> str:
    """Code prompts: drop example lines (doctests and their outputs, asserts, `f(x) == y`, "For lst =
    ... the output should be"), whose numbers a rewrite changes or leaves out freely."""
    # a call of the function is an example in a code prompt; in prose it is the task's own sentence
    calls = (
        re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\s*\(") if _DEF.search(text) else re.compile(r"(?!)")
    )
    out, after_doctest = [], False
    for line in text.splitlines():
        s = line.strip()
        example = (
            s.startswith((">>>", "assert ", "For ", "for "))
            or "==" in s
            or (bool(calls.search(s)) and not s.startswith("def "))
        )
        if example or (after_doctest and s and not s.startswith(_QUOTES)):
            after_doctest = s.startswith(">>>")
            continue
        after_doctest = False
        out.append(line)
    return "\n".join(out)


def functions(text: str) -> list[str]:
    """Function names a code prompt asks for: `def name(`, the first call in an assert line, or a
    snake_case call in prose ("Implement `has_close_elements(numbers, threshold)`")."""
    names = _DEF.findall(text)
    for line in text.splitlines() if "assert " in text else ():  # (no line can start with it otherwise)
        if line.strip().startswith("assert "):
            names += [n for n in _CALL.findall(line) if n not in _BUILTINS][:1]
    if not names:
        names = _SNAKE_CALL.findall(text)[:1]
    return list(dict.fromkeys(names))


def numbers(text: str) -> list[str]:
    """Normalised quantities of `text`, as canonical fraction strings, in order of appearance."""
    text = unicodedata.normalize("NFKC", text).replace("{,}", ",").replace("\u2212", "-")
    if "\\" in text or "$" in text:
        text = _FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
        text = _FRAC_SHORT.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
        text = _LATEX_NOISE.sub(" ", text)
    if " point " in text:  # "two point five" -> 2.5
        text = _POINT.sub(
            lambda m: f"{_UNITS[m.group(1).lower()]}.{''.join(str(_UNITS[d.lower()]) for d in m.group(2).split())}",
            text,
        )
    if "a " in text or "A " in text:
        text = _AND_A_HALF.sub(lambda m: f"{m.group(1)}.5", text)
        text = _A_FRACTION.sub(
            lambda m: m.group(0) if _AFTER_COUNT_AND.search(text, 0, m.start()) else f"one {m.group(1)}", text
        )
        text = _COUPLE.sub("two of", text)
    found: list[tuple[int, Fraction, tuple[str, Fraction, int] | None]] = []
    for m in _NUMBER.finditer(text):
        num, den, pct, neg = m.group("num", "den", "pct", "neg")
        if neg and text[: m.start()].rstrip()[-1:] not in ("", "(", "[", "{", ",", "=", ":"):
            neg = None  # binary minus: "x - 2" subtracts the quantity 2
        num = num.replace(",", "")
        if not (den or pct or "." in num):  # the common case: a plain int (same arithmetic and `_canon`)
            value: Fraction | int = int(num)
        else:
            value = Fraction(num)
            if den and int(den):
                value /= int(den)
            if pct:
                value /= 100
        unit = None
        if not pct:
            value, unit = _in_base_unit(text, m.end(), value)
        elif (factor := _relative(text, m.end(), value)) is not None:
            found.append((m.start(), factor, None))  # "50% more" is also "1.5 times"
        found.append((m.start(), -value if neg else value, unit))
    for start, end, words in _word_runs(text):
        value = _word_value(words)
        if value is not None:
            unit = None
            if pct := _PERCENT.match(text, end):
                value = value / 100
                if (factor := _relative(text, pct.end(), value)) is not None:
                    found.append((start, factor, None))
            else:
                value, unit = _in_base_unit(text, end, value)
            found.append((start, value, unit))
    if "s " in text or text.endswith("s") or "s." in text or "s," in text:
        for m in _PLURAL_DIGIT.finditer(text):  # "only the digits zeros and twos", "in threes"
            found.append((m.start(), Fraction(_PLURAL_DIGITS[m.group(1).lower()]), None))
    found.sort(key=lambda f: f[0])
    return [_canon(v) for _, v, _ in _add_compounds(found, text)]


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Plural to singular (a light stemmer is enough to compare two questions), then synonyms."""
    word = _SYNONYMS.get(word, word)
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith(("sses", "ches", "shes", "xes", "zes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return _SYNONYMS.get(word, word)


def _question(text: str) -> str:
    """The sentence that asks the question: the last one with "?", else the last imperative one."""
    sentences = [s for s in _SENTENCE.split(text.strip()) if s and s.strip()]
    question = next((s for s in reversed(sentences) if "?" in s), None)
    if question is None:
        question = next((s for s in reversed(sentences) if _IMPERATIVE.match(s)), "")
    return question[question.rfind("?", 0, len(question) - 1) + 1 :] if question.count("?") > 1 else question


def ask(text: str) -> frozenset[str]:
    """Content words (stemmed, synonyms folded) of the sentence that asks the question."""
    words = _WORD.findall(re.sub(r"\\[a-zA-Z]+", " ", _question(text).lower()))
    return frozenset(stem(w) for w in words if w not in STOP_WORDS and len(w) > 1 and stem(w) not in STOP_WORDS)


def question_reworded(row_text: str, item_text: str) -> bool:
    """For a row that copies an item's words (an n-gram match): its question is not the item's. The
    row's question sentence is not found in the item, and the asked clauses (from the last wh-word on)
    share under half of their words (plurals folded, no synonyms: "how many hours does he spend" is not "how much would he earn",
    although both are about time and money). A copy without a question of its own is not reworded."""
    row_q, item_q = _asked_clause(_question(row_text)), _asked_clause(_question(item_text))
    a = {_plural(w) for w in _WORD.findall(row_q.lower()) if w not in STOP_WORDS and len(w) > 1}
    b = {_plural(w) for w in _WORD.findall(item_q.lower()) if w not in STOP_WORDS and len(w) > 1}
    if not a or not b or " ".join(row_q.lower().split()) in " ".join(item_text.lower().split()):
        return False
    return len(a & b) < 0.5 * len(a | b)


def _asked_clause(question: str) -> str:
    """From the last wh-word or imperative on ("If she makes 15 flans, how many eggs does she need?"
    -> "how many eggs does she need?"): the condition before it is setup, copied with the rest."""
    starts = [m.start() for m in _WH.finditer(question)]
    return question[starts[-1] :] if starts else question


def _plural(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


@dataclass(frozen=True)
class Signature:
    """The quantities of one text (with multiplicity) and what it asks for."""

    quantities: tuple[str, ...]  # canonical numbers and `fn:` names, sorted
    ask: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Signature:
        fns = functions(text)
        body = _drop_examples(text, fns) if fns else text
        return cls(tuple(sorted(numbers(body) + [f"fn:{f}" for f in fns])), ask(text))

    def describe(self) -> str:
        """Short human-readable form for evidence columns."""
        return "{" + ", ".join(self.quantities) + "}" + (f" asks: {' '.join(sorted(self.ask))}" if self.ask else "")


class SignatureIndex:
    """IDF weights of signature elements over the reference items, and weighted agreement.

    Weights are scaled so that a number found in exactly one reference item weighs 1.0 whatever
    the number of items (a common "2" weighs about 0.2 against the bundled sets); a function name
    weighs 2.0: it names the task."""

    def __init__(self, refs: Sequence[Signature]) -> None:
        df: Counter[str] = Counter()
        for sig in refs:
            df.update(set(sig.quantities))
        self.n = max(len(refs), 1)
        self.df = df
        self.unit = math.log(1 + self.n / 2)
        self._memo: dict[str, float] = {}  # element -> weight: the gate asks for each row's elements again

    def weight(self, element: str) -> float:
        w = self._memo.get(element)
        if w is None:
            w = 2.0 if element.startswith("fn:") else math.log(1 + self.n / (self.df.get(element, 0) + 1)) / self.unit
            self._memo[element] = w
        return w

    def mass(self, sig: Signature) -> float:
        return sum(self.weight(e) for e in set(sig.quantities))

    def overlap(self, a: Signature, b: Signature) -> float:
        """Weighted Dice of the two signatures' distinct quantities; 0.0 when both have none.

        Distinct, not counted: rewrites merge and split repeated mentions ("both greater than 1"
        becomes "x > 1 and y > 1"), while a template sibling changes the values themselves."""
        shared = sum(self.weight(e) for e in set(a.quantities) & set(b.quantities))
        total = self.mass(a) + self.mass(b)
        return 2 * shared / total if total else 0.0


def asks_agree(a: Signature, b: Signature) -> bool:
    """False only when both questions have two or more content words and share none: "how many eggs
    in a week" against "how much money every day" is another question about the same story, while
    a one-word ask ("what is N - 2025?") says too little to disagree."""
    return len(a.ask) < 2 or len(b.ask) < 2 or bool(a.ask & b.ask)


def asks_another(row: Signature, item: Signature) -> bool:
    """Stricter than `not asks_agree`, for rows that copy an item's words (n-gram matches): each
    question has words the other lacks and they share under 60% of their words ("how much does
    Lloyd make on eggs per week" -> "how many dozens of eggs does Lloyd sell per day"). A row
    without a question of its own (a truncated copy) does not disagree."""
    if len(row.ask) < 2 or len(item.ask) < 2:
        return False
    shared = len(row.ask & item.ask)
    return bool(row.ask - item.ask) and bool(item.ask - row.ask) and shared < 0.6 * len(row.ask | item.ask)


def numbers_changed(row: Signature, item: Signature) -> bool:
    """The row has a quantity the item lacks and lacks one the item has: one number changed (a
    truncated or wrapped copy only loses quantities, or keeps them all)."""
    a = {q for q in row.quantities if not q.startswith("fn:")}
    b = {q for q in item.quantities if not q.startswith("fn:")}
    return bool(a - b) and bool(b - a)
