"""Answer keys: what a benchmark item answers, what a training row answers, and whether they agree.

A rephrasing keeps the problem, so it keeps the answer, while its words, story and even its units
change; a template sibling or "same setup, another question" changes the answer. Training rows for
PRMs and RLVR usually carry their reference answer, in a column or in the text (a `####` line, a
boxed answer, an "Answer:" line), and the bundled benchmarks ship theirs
(`rsynth/resources/benchmarks/answer_keys.jsonl.gz`, built by bench/decontam_answer_keys.py): the
maths items' answers, the code items' entry point, canonical solution and tests.

Comparison is exact for plain numbers ("$1,430.00" and "1430" agree; "18" and "18.5" do not) and
goes to the project's math verifier (`rsynth.verifiers.math`, Math-Verify in a worker pool with a
hard timeout) only for the rest (LaTeX, expressions, sets). Model text is never evaluated here.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from typing import Any

from rsynth.decontam.programs import program_in_text

ANSWER_COLUMNS = ("reference_answer", "answer", "final_answer", "gold_answer", "expected_answer")
SOLUTION_COLUMNS = ("solution", "canonical_solution", "reference_solution", "code", "program")
TESTS_COLUMNS = ("tests", "test", "test_list", "test_code")

_ANSWER_LINE = re.compile(r"(?im)^\s*(?:\*\*)?(?:final\s+)?answer(?:\*\*)?\s*[:：]\s*(.+?)\s*$")
_NUMERIC = re.compile(
    r"^\s*\\?\$?\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)\s*(?:%|\\%)?\s*(?:[A-Za-z][A-Za-z .]*)?\.?\s*$"
)
_FRACTION = re.compile(r"^\s*(-?\d+)\s*/\s*(\d+)\s*$")
_TEX_NOISE = re.compile(r"\\[,;!: ]|\\(?:text|mathrm|textbf|mbox)\{([^{}]*)\}|\^\{?\\circ\}?|\\(?:left|right)|\$")
_CODE_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


@dataclass(frozen=True)
class Key:
    """A benchmark item's key: a maths answer, or a code task's entry point, solution and tests."""

    answer: str | None = None
    entry_point: str | None = None
    solution: str | None = None
    tests: str | None = None
    inputs: str | None = None  # MBPP+: JSON list of argument lists; outputs come from `solution` in the sandbox
    atol: float = 0.0
    task_id: str | None = None

    @property
    def is_code(self) -> bool:
        return bool(self.tests and self.entry_point)


def bundled_keys() -> dict[tuple[str, str], Key]:
    """(benchmark, item id) -> key, for the bundled benchmarks."""
    path = resources.files("rsynth") / "resources" / "benchmarks" / "answer_keys.jsonl.gz"
    out: dict[tuple[str, str], Key] = {}
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            inputs = json.dumps(r["inputs"]) if r.get("inputs") else None
            out[(r["benchmark"], r["id"])] = Key(
                r.get("answer"),
                r.get("entry_point"),
                r.get("solution"),
                r.get("tests"),
                inputs,
                float(r.get("atol") or 0),
                r["id"],
            )
    return out


@dataclass(frozen=True)
class RowFacts:
    """What a training row says about itself beyond its text: its answer, reference program and tests."""

    answer: str | None = None
    solution: str | None = None
    tests: str | None = None

    def as_tuple(self) -> tuple[str | None, str | None, str | None]:
        return self.answer, self.solution, self.tests


def _first(data: dict[str, Any], column: str, auto: Sequence[str]) -> Any:
    if column == "none":
        return None
    if column != "auto":
        return data.get(column)
    return next(
        (data[c] for c in auto if data.get(c) is not None and (not isinstance(data[c], str) or data[c].strip())), None
    )


_MARKS = (
    re.compile(r"^\s*####", re.MULTILINE),
    re.compile(r"\\boxed\s*\{"),
    re.compile(r"\bthe\s+(?:final\s+)?answer\s+is\b", re.IGNORECASE),
    _ANSWER_LINE,
)


def marked_answers(text: str) -> int:
    """The most final answers the text marks in one way (`####` lines, boxed answers, "The answer
    is", "Answer:" lines with something after them). Two or more of a kind is a few-shot prompt:
    its marked answers belong to the worked examples, and the asked question (last, unanswered) has
    none of its own, so the text gives the row no answer. ("The answer is 5. \\boxed{5}" marks one.)"""
    return max(len(m.findall(text)) for m in _MARKS)


def final_answer(text: str) -> str | None:
    """An explicitly marked final answer: the last boxed answer, a `####` line, "The answer is",
    or an "Answer:" line. Never a guess (the last number of a text is not its answer)."""
    from rsynth.answers import extract_final_answer

    found = extract_final_answer(text)
    if found:
        return found
    lines = _ANSWER_LINE.findall(text)
    return lines[-1].strip().rstrip(".") if lines else None


def row_facts(
    data: dict[str, Any],
    text: str,
    answer_column: str = "auto",
    solution_column: str = "auto",
    tests_column: str = "auto",
) -> RowFacts:
    """The row's answer (a short answer column as given, a worked-solution column or the text by
    its marked final answer), its reference program (a program column, or the Python program the
    text carries: `programs.py`) and tests, from the named or usual columns."""
    raw = _first(data, answer_column, ANSWER_COLUMNS)
    answer = None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        answer = str(raw)
    elif isinstance(raw, str) and raw.strip():
        answer = raw.strip() if len(raw) <= 60 and "\n" not in raw.strip() and "####" not in raw else final_answer(raw)
    if answer is None and answer_column in ("auto",) and marked_answers(text) <= 1:
        answer = final_answer(text)
    solution = _first(data, solution_column, SOLUTION_COLUMNS)
    tests = _first(data, tests_column, TESTS_COLUMNS)
    if isinstance(tests, list):
        tests = "\n".join(str(t) for t in tests)
    solution = solution if isinstance(solution, str) and _CODE_DEF.search(solution) else None
    if solution is None and solution_column == "auto":
        solution = program_in_text(text)
    if solution is not None and answer == solution.strip():
        answer = None
    return RowFacts(answer, solution, tests if isinstance(tests, str) and "assert" in tests else None)


@functools.lru_cache(maxsize=1 << 16)  # pure; a row's answer is looked up by the gate, the comparer and unit_ratio
def number(answer: str) -> Fraction | None:
    """The answer as an exact number when it is one ("$1,430", "18 eggs", "25%"-less, "3/4"), else None."""
    cleaned = _TEX_NOISE.sub(lambda m: m.group(1) or " ", answer).replace("\\!", "").strip()
    cleaned = re.sub(r"^\\boxed\{(.*)\}$", r"\1", cleaned).strip()
    m = _FRACTION.match(cleaned)
    if m:
        return Fraction(int(m.group(1)), int(m.group(2))) if int(m.group(2)) else None
    frac = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", cleaned)
    if frac:
        value = Fraction(int(frac.group(2)), int(frac.group(3))) if int(frac.group(3)) else None
        return -value if value is not None and frac.group(1) else value
    m = _NUMERIC.match(cleaned)
    if m:
        return Fraction(m.group(1).replace(",", ""))
    return None


@functools.lru_cache(maxsize=1 << 16)  # pure; called for each window of a row, and twice by _extra_candidates
def canonical(answer: str) -> str:
    """A hashable form of an answer for candidate lookup: the exact number, or squeezed text."""
    value = number(answer)
    if value is not None:
        return str(value)
    return re.sub(r"\s+", "", _TEX_NOISE.sub(lambda m: m.group(1) or "", answer)).lower()


class AnswerComparer:
    """Equal / not equal / cannot tell for (row answer, item answer) pairs: numbers exactly, the
    rest through the math verifier (started on first use, closed with `close`)."""

    def __init__(self) -> None:
        self._verifier = None
        self._memo: dict[tuple[str, str], bool | None] = {}

    def compare(self, pairs: Sequence[tuple[str, str]]) -> list[bool | None]:
        out: list[bool | None] = []
        todo: dict[tuple[str, str], None] = {}
        for row, item in pairs:
            a, b = number(row), number(item)
            if a is not None and b is not None:
                out.append(a == b)
            elif canonical(row) == canonical(item):
                out.append(True)
            elif (row, item) in self._memo:
                out.append(self._memo[(row, item)])
            else:
                out.append(None)
                todo[(row, item)] = None
        if todo:
            self._verify(list(todo))
            out = [self._memo.get(p, o) if o is None else o for p, o in zip(pairs, out)]
        return out

    def _verify(self, pairs: list[tuple[str, str]]) -> None:
        from rsynth.verifiers.base import VerifyItem

        if self._verifier is None:
            from rsynth.verifiers.math import MathVerifier

            self._verifier = MathVerifier(timeout=5.0, workers=1)
        verdicts = self._verifier.verify_batch([VerifyItem(item, row) for row, item in pairs])
        for pair, v in zip(pairs, verdicts):
            self._memo[pair] = True if v.status == "correct" else False if v.status == "incorrect" else None

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None


# factors between units a rewrite may ask its answer in (hours -> minutes, feet -> inches, kg -> g, ...)
_UNIT_RATIOS = frozenset(Fraction(x) for x in (60, 3600, 24, 7, 12, 36, 3, 5280, 63360, 10, 100, 1000, 16, 2000))


# units a question may ask its answer in, beyond the signature's convertible ones: money and counts
_ASKED_UNITS = {"cent": "cent", "cents": "cent", "dollar": "dollar", "dollars": "dollar", "dozen": "dozen"}
_ASKED_UNITS |= {"dozens": "dozen", "month": "month", "months": "month", "year": "year", "years": "year"}


def asked_units(text: str) -> frozenset[str]:
    """Unit words of the sentence that asks the question ("How high, in feet, ..." -> {foot}), each
    folded to its unit (`feet` and `ft` are one)."""
    from rsynth.decontam.signature import _UNIT_FACTORS, _question

    out = set()
    for word in re.findall(r"[a-z]+", _question(text).lower()):
        if word in _UNIT_FACTORS:
            family, factor = _UNIT_FACTORS[word]
            out.add(f"{family}:{factor}")
        elif word in _ASKED_UNITS:
            out.add(_ASKED_UNITS[word])
    return frozenset(out)


def in_other_units(row_text: str, item_text: str) -> bool:
    """The row asks for its answer in a unit the item's question does not name ("in feet" against
    "in inches"): only then may answers that differ by a factor between units be the same answer.
    Without it, an answer 3 against an item's 36 (ratio 12) or 10 against 100 is a coincidence of
    small numbers, common among look-alikes that ask another question of the same setup."""
    row = asked_units(row_text)
    return bool(row) and bool(row - asked_units(item_text))


def unit_ratio(row: str, item: str) -> bool:
    """The two answers differ by a factor between units ("300" minutes for "5" hours)."""
    a, b = number(row), number(item)
    if not a or not b:
        return False
    return a / b in _UNIT_RATIOS or b / a in _UNIT_RATIOS
