"""Final-answer equivalence for math, on math-verify, in worker processes with a hard timeout.

Why it is built this way:
- math-verify's own timeouts use `signal.alarm`, which raises outside the main thread, so they are
  switched off and each item runs in a `HardTimeoutPool` worker that is killed when it overruns.
- Only math-verify's LaTeX extraction is used: its `ExprExtractionConfig` feeds raw text to
  sympy's `parse_expr`, which calls `eval`. LaTeX goes through an ANTLR grammar (latex2sympy) and
  never reaches Python's evaluator, so model text stays data.
- math-verify compares numbers to ~15 significant digits, which makes 1/2004! "equal" 1/2006!; when
  both sides are exact rationals we compare them exactly instead.
- Cheap guards run in the parent before anything is parsed (length, brace depth, digit runs), so
  megabyte strings and deep nesting are `unparseable` at once instead of burning a worker's timeout.
- Hedging is wrong (a reward hack in RL with verifiable rewards): a candidate whose boxed answers
  disagree with each other, or that lists several values where the reference is one value, is
  `incorrect` with the reason `hedged`. A list still compares as a set when the reference is a set.
- Repeating decimals (`0.\\overline{3}`, `0.(3)`, `0.\\dot{3}`) become exact fractions first (digits
  only, by regex: model text is never evaluated).
- Inequalities against intervals (`x>2` vs `(2,\\infty)`) are compared as intervals built directly
  from the parsed relation. math-verify would call sympy's `as_set`, whose general inequality
  solver (`solve_univariate_inequality`, `periodicity`, `simplify`) took 0.1-0.9 s per pair and
  still missed the interval-first direction: it was the slow path of such pairs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from fractions import Fraction
from importlib.metadata import version
from typing import Any

from rsynth.answers import Extraction, extract, last_boxed, strip_chat_tail
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem
from rsynth.verifiers.math_text import (
    base_numeral,
    choice_candidate,
    choice_reference,
    degrees,
    plain_number,
    prose_number,
    read_in_base,
)
from rsynth.verifiers.pool import HardTimeoutPool, Outcome

MAX_ANSWER_CHARS = 1000  # an extracted final answer longer than this is not an answer
MAX_BRACE_DEPTH = 30
MAX_DIGITS = 400  # one run of digits; longer numbers are rejected rather than fed to sympy
EVIDENCE_CHARS = 300

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_WORDS = re.compile(r"^[a-z]+(?:[ '\-][a-z]+)*$")
_CHOICE = re.compile(r"^\(?([a-e])\)$|^([a-e])$")
_DIGIT_RUN = re.compile(r"\d{%d,}" % (MAX_DIGITS + 1))
# 0.\overline{3}, 1.2\overline{34}, 0.\dot{3}, 0.(3): digits, then the repeating block
_REPEATING = re.compile(
    r"(?<![\d.])(\d*)\.(\d*)(?:\\overline\s*\{(\d+)\}|\\overline\s*(\d)|\\dot\s*\{(\d)\}|\\dot\s*(\d)|\((\d+)\))"
)
HEDGED = "hedged"
EXACT_DIFFER = "exact values differ (beyond float precision)"
PLUS_MINUS = "a ± answer against one value"
AFTER_BOX = "the answer stated after the last box is not the box"
# named reasons to refuse a pair that math-verify's own reading would accept (the superset rule)
REFUSALS = frozenset({HEDGED, EXACT_DIFFER, PLUS_MINUS, AFTER_BOX})
MV_READING = "math-verify's LaTeX extraction of the full text"
RAW_CHARS = 20_000  # full texts longer than this are not re-read by math-verify's extraction
STATED_CHAIN = ("boxed", "final-answer", "answer-is", "hashes")


def read_answer(text: str, reference: bool = False) -> Extraction:
    """The final answer of a text and the rule that found it: the explicit markers of
    `rsynth.answers` (box, Final Answer line, "the answer is", `####`), else the whole text when it
    is short, else its last math span or number. A reference with several different boxes is a
    list ("\\boxed{1}, \\boxed{2}"), not a hedge."""
    text = strip_chat_tail(text)
    if reference:
        boxes = listed_boxes(text)
        if len({re.sub(r"\s+", "", b) for b in boxes}) > 1:
            return Extraction(", ".join(b.strip() for b in boxes), "boxes-list")
    ext = extract(text, STATED_CHAIN)
    if ext.answer is not None:
        return Extraction(ext.answer.strip().strip("$").strip(), ext.rule)
    whole = text.strip()
    if len(whole) <= MAX_ANSWER_CHARS:
        return Extraction(whole, "whole-text")
    guess = extract(text, ("last-math", "last-number"))
    return guess if guess.answer is not None else Extraction(whole, "whole-text")


def answer_text(text: str) -> str:
    """The final answer inside a candidate (`read_answer` without the rule)."""
    return read_answer(text).answer or ""


def box_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every `\\boxed{}` / `\\fbox{}` with balanced braces, in order."""
    spans = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth = 0
        for j in range(m.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                spans.append((m.start(), j + 1, text[m.end() : j].strip()))
                break
    return [s for i, s in enumerate(spans) if not spans[:i] or s[0] >= spans[i - 1][1]]


def listed_boxes(text: str) -> list[str]:
    """The boxes of a reference that form one list: the last box and the ones before it with at most
    three words between neighbours (`\\boxed{1} and \\boxed{2}`, `\\boxed{1} papers and \\boxed{2}
    bins`); a longer gap starts another statement, whose boxes are not part of the answer."""
    spans = box_spans(text)
    if not spans:
        return []
    kept = [spans[-1]]
    for span in reversed(spans[:-1]):
        gap = re.sub(r"\\[A-Za-z]+|[$\\{}(),.;:]", " ", text[span[1] : kept[-1][0]])
        if len(gap.split()) > 3:
            break
        kept.append(span)
    return [content for _, _, content in reversed(kept)]


def rewrite(answer: str, decimal_comma: bool) -> tuple[str, list[str]]:
    """`answer` with the plain-text forms latex2sympy misreads rewritten by rule (`math_text`):
    Unicode minus, degree signs, plain-text numbers, the last number of a prose answer. Returns the
    text and the rules that fired."""
    rules = []
    text = answer.replace("\u2212", "-")
    deg = degrees(text)
    if deg is not None:
        text, rules = deg.latex, [deg.rule]
    num = plain_number(text, decimal_comma) or prose_number(text)
    if num is not None and num.latex != text.strip():
        text = num.latex
        rules.append(num.rule)
    return text, rules


def boxed_answers(text: str) -> list[str]:
    """Every `\\boxed{}` / `\\fbox{}` content of a candidate, in order."""
    found = []
    while (content := last_boxed(text)) is not None:
        found.append(content)
        text = text[: max(text.rfind("\\boxed"), text.rfind("\\fbox"))]
    return found[::-1]


def hedges(candidate: str) -> tuple[str, ...]:
    """The boxed answers that differ (as text) from the last one: the candidates a hedging
    prediction offers besides its final answer. The worker checks whether they are equivalent."""
    boxes = boxed_answers(candidate)
    last = re.sub(r"\s+", "", boxes[-1]) if boxes else ""
    return tuple(dict.fromkeys(b.strip() for b in boxes[:-1] if re.sub(r"\s+", "", b) != last))


def exact_repeating(answer: str) -> str:
    """Repeating decimals written as `\\frac{p}{q}` (exact), so 0.\\overline{3} equals 1/3."""

    def fraction(m: re.Match) -> str:
        whole, fixed = m.group(1) or "0", m.group(2)
        block = next(g for g in m.groups()[2:] if g)
        value = Fraction(int(whole)) + Fraction(int(fixed or 0), 10 ** len(fixed))
        value += Fraction(int(block), 10 ** len(fixed) * (10 ** len(block) - 1))
        return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"

    return _REPEATING.sub(fraction, answer)


def _brace_depth(text: str) -> int:
    depth = worst = 0
    for ch in text:
        if ch == "{":
            depth += 1
            worst = max(worst, depth)
        elif ch == "}":
            depth -= 1
    return worst


def guard(answer: str) -> str | None:
    """Why `answer` is refused before parsing, or None when it may be parsed."""
    if not answer:
        return "no final answer"
    if len(answer) > MAX_ANSWER_CHARS:
        return f"answer longer than {MAX_ANSWER_CHARS} characters"
    if _brace_depth(answer) > MAX_BRACE_DEPTH:
        return f"braces nested deeper than {MAX_BRACE_DEPTH}"
    if _DIGIT_RUN.search(answer):
        return f"number longer than {MAX_DIGITS} digits"
    return None


def text_answer(answer: str, bare_choice: bool = False) -> str | None:
    """A word answer ("\\text{Evelyn}", "(C)", "east") normalised, or None for a math answer.

    sympy would read "Evelyn" as the product E*v*e*l*y*n and match any anagram, so word answers are
    compared as lowercased strings instead. A bare letter counts as a choice only on the candidate
    side of a multiple-choice reference (`bare_choice`); elsewhere "C" is a variable.
    """
    s = answer.strip().strip("$").strip()
    unwrapped = _TEXT_WRAPPER.sub(lambda m: m.group(1), s)
    wrapped = unwrapped != s
    s = re.sub(r"\s+", " ", unwrapped).strip().rstrip(".").strip().lower()
    choice = _CHOICE.match(s)
    if choice and (wrapped or bare_choice or s.startswith("(")):
        return choice.group(1) or choice.group(2)
    if _WORDS.match(s) and (wrapped or all(len(w) > 1 for w in re.split(r"[ '\-]", s))):
        return s
    return None


def _latex(answer: str) -> str:
    """Delimit a bare answer as math; an escaped dollar sign ("\\$32") is currency, not a delimiter."""
    answer = answer.replace("\\$", "")
    return answer if "$" in answer else f"${answer}$"


def _exact_conflict(gold: Any, pred: Any, percent: bool) -> bool:
    """True when both sides are exact rationals with different values (math-verify rounds to 6
    decimals, so 1/2004! and 1/2006! both become 0). With a percent sign, 50% may be given as 50."""
    import sympy

    if not (isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr)):
        return False
    if not (gold.is_number and pred.is_number) or gold.atoms(sympy.Float) or pred.atoms(sympy.Float):
        return False
    g, p = gold.doit(), pred.doit()
    if not (g.is_Rational and p.is_Rational):
        return False
    allowed = {g, g * 100, g / 100} if percent else {g}
    return p not in allowed


def _clip(obj: Any) -> str:
    text = str(obj)
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS] + "…"


def _is_variable(expr: Any) -> bool:
    """A symbol or an unknown function's value (`x`, `f(x)`): what a relation constrains."""
    from sympy.core.function import AppliedUndef

    return bool(expr.is_Symbol or isinstance(expr, AppliedUndef))


def _abs_set(rel: Any) -> tuple[Any, Any] | None:
    """(solution set, variable) of `|a x + b| < c` and its kin (one variable, linear inside the
    absolute value, a number on the other side), solved over the reals; None for anything else."""
    import sympy

    side = rel.lhs if rel.lhs.has(sympy.Abs) else rel.rhs
    other = rel.rhs if side is rel.lhs else rel.lhs
    if not isinstance(side, sympy.Abs) or other.free_symbols or len(side.free_symbols) != 1:
        return None
    x = next(iter(side.free_symbols))
    inner = side.args[0]
    if not inner.is_polynomial(x) or sympy.degree(inner, x) != 1:
        return None
    return sympy.solveset(rel, x, domain=sympy.S.Reals), x


def _relation_set(expr: Any) -> tuple[Any, Any] | None:
    """(interval set, variable) of a simple inequality in one variable against numbers (`x > 2`,
    `2 < x \\le 5`, `0 < f(x) < 1`, `x < -1 \\text{ or } x > 2`, `|x-1| < 2`), built directly; None
    for anything else."""
    import sympy
    from sympy.core.relational import Relational

    if isinstance(expr, (sympy.And, sympy.Or)) or (isinstance(expr, sympy.FiniteSet) and len(expr) > 1):
        parts = [_relation_set(a) for a in expr.args]
        if any(p is None for p in parts) or len({p[1] for p in parts}) != 1:
            return None
        combine = sympy.Intersection if isinstance(expr, sympy.And) else sympy.Union
        return combine(*[p[0] for p in parts]), parts[0][1]
    if not isinstance(expr, Relational) or isinstance(expr, (sympy.Eq, sympy.Ne)):
        return None
    if expr.has(sympy.Abs):
        return _abs_set(expr)
    rel = expr if _is_variable(expr.lhs) else expr.reversed
    x, bound = rel.lhs, rel.rhs
    if not _is_variable(x) or bound.free_symbols or not bound.is_extended_real:
        return None
    build = {
        ">": lambda: sympy.Interval.open(bound, sympy.oo),
        ">=": lambda: sympy.Interval(bound, sympy.oo),
        "<": lambda: sympy.Interval.open(-sympy.oo, bound),
        "<=": lambda: sympy.Interval(-sympy.oo, bound),
    }
    return (build[rel.rel_op](), x) if rel.rel_op in build else None


def _as_intervals(gold: Any, pred: Any) -> tuple[Any, Any] | None:
    """Both sides as interval sets when one is an inequality and the other an interval (or both
    inequalities: the solution sets are compared, whatever the variable is called); None when
    this comparison does not apply."""
    import sympy

    g, p = _relation_set(gold), _relation_set(pred)
    intervals = (sympy.Interval, sympy.Union)
    if g and p:
        return g[0], p[0]
    if g and isinstance(pred, intervals):
        return g[0], pred
    if p and isinstance(gold, intervals):
        return gold, p[0]
    return None


def _many_values(expr: Any) -> bool:
    """A list of candidates: several values, or `x = 2, 3`."""
    import sympy

    if isinstance(expr, sympy.Eq):
        expr = expr.rhs
    return isinstance(expr, sympy.FiniteSet) and len(expr) > 1


def _one_value(expr: Any) -> bool:
    import sympy

    return isinstance(expr, sympy.Expr) or (isinstance(expr, sympy.Eq) and isinstance(expr.rhs, sympy.Expr))


def _imaginary_unit(gold: Any, pred: Any) -> tuple[Any, Any] | None:
    """Both sides with the symbol `i` read as the imaginary unit, when either side has it in an
    exponent or next to a trig function (`e^{i\\pi/2}`, `\\cos t + i \\sin t`): latex2sympy keeps `i`
    a plain symbol, so `e^{i\\pi}` never equals -1. None when no side has such an `i`."""
    import sympy

    sides = (gold, pred)
    if not all(isinstance(e, sympy.Expr) for e in sides):
        return None
    units = {s for e in sides for s in e.free_symbols if s.name == "i"}  # latex2sympy's `i` has assumptions
    if not units or not any(e.has(sympy.exp, sympy.sin, sympy.cos) and e.free_symbols & units for e in sides):
        return None
    imaginary = {u: sympy.I for u in units}
    return gold.subs(imaginary), pred.subs(imaginary)


def _plus_minus(reference: str, candidate: str) -> bool:
    """One side is a `±` answer and the other is not (math-verify accepts `\\pm 2021` vs `2021`)."""

    def pm(s: str) -> bool:
        return "\\pm" in s or "±" in s or "\\mp" in s

    return pm(reference) != pm(candidate)


def _mv_reading(raw_reference: str, raw_candidate: str, gold: list, pred: list) -> tuple[list, list] | None:
    """math-verify's own reading of the full texts (LaTeX extraction only: model text never reaches
    `parse_expr`), each side falling back to rsynth's parse; the pair when math-verify accepts it."""
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]
    g = (parse(raw_reference, extraction_config=config, parsing_timeout=None) if raw_reference else None) or gold
    p = (parse(raw_candidate, extraction_config=config, parsing_timeout=None) if raw_candidate else None) or pred
    if not g or not p or not verify(g, p, timeout_seconds=None):
        return None
    if _exact_conflict(g[0], p[0], percent=False):
        return None
    return g, p


def check_pair(
    reference: str, candidate: str, others: tuple[str, ...] = (), raw_reference: str = "", raw_candidate: str = ""
) -> tuple[str, str, str, str]:
    """Worker side: (status, reference parsed, candidate parsed, reason) for two guarded answers;
    `others` are the candidate's other boxed answers (any that disagrees: hedged). `raw_*` are the
    full texts (empty: not to be re-read); when rsynth's reading refuses a pair without a named
    reason, math-verify's extraction of the full texts gets its say (the superset rule)."""
    status, gold, pred, reason = _check(reference, candidate, others)
    if status != "correct" and reason not in REFUSALS and (raw_reference or raw_candidate):
        accepted = _mv_reading(raw_reference, raw_candidate, gold, pred)
        if accepted is not None:
            return "correct", _clip(accepted[0][0]), _clip(accepted[1][0]), MV_READING
    return status, _clip(gold[0]) if gold else "", _clip(pred[0]) if pred else "", reason


def _check(reference: str, candidate: str, others: tuple[str, ...]) -> tuple[str, list, list, str]:
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]
    gold = parse(_latex(reference), extraction_config=config, parsing_timeout=None)
    pred = parse(_latex(candidate), extraction_config=config, parsing_timeout=None)
    if not gold or not pred:
        side = "reference" if not gold else "candidate"
        return "unparseable", gold, pred, f"{side} did not parse"
    if others and _many_values(gold[0]):  # a set answer boxed element by element is one list
        pred = parse(_latex(", ".join((*others, candidate))), extraction_config=config, parsing_timeout=None) or pred
        others = ()
    for other in others:
        alt = parse(_latex(other), extraction_config=config, parsing_timeout=None)
        if not alt or not verify(alt, pred, timeout_seconds=None):
            return "incorrect", gold, pred, HEDGED
    if _one_value(gold[0]) and _many_values(pred[0]):
        return "incorrect", gold, pred, HEDGED
    intervals = _as_intervals(gold[0], pred[0])
    if intervals is not None:
        return ("correct" if intervals[0] == intervals[1] else "incorrect"), gold, pred, "compared as intervals"
    ok = verify(gold, pred, timeout_seconds=None)
    reason = ""
    if not ok and (unit := _imaginary_unit(gold[0], pred[0])) is not None:
        ok = verify([unit[0]], [unit[1]], timeout_seconds=None)
        reason = "i read as the imaginary unit" if ok else ""
    if ok and _exact_conflict(gold[0], pred[0], percent="%" in reference + candidate):
        ok, reason = False, EXACT_DIFFER
    if not ok and _plus_minus(reference, candidate):
        reason = PLUS_MINUS
    return ("correct" if ok else "incorrect"), gold, pred, reason


def two_stage_parsing() -> bool:
    """Make latex2sympy's ANTLR parser try fast SLL prediction first and fall back to full LL
    only when SLL fails, the standard two-stage ANTLR strategy. Profiling showed full-context
    prediction (`execATNWithFullContext`) as half of the time of set, interval and inequality
    answers; on all MATH-500 answers, their perturbations and the test table the parses are
    identical. Returns False (and changes nothing) where latex2sympy's internals differ."""
    import types

    from antlr4.atn.PredictionMode import PredictionMode
    from antlr4.error.Errors import ParseCancellationException
    from antlr4.error.ErrorStrategy import BailErrorStrategy
    from latex2sympy2_extended import latex2sympy2

    cls = getattr(latex2sympy2, "_Latex2Sympy", None)
    if cls is None or not hasattr(cls, "create_parser") or getattr(cls.parse, "two_stage", False):
        return False
    create, parse_ll = cls.create_parser, cls.parse

    def create_sll(self: Any, latex: str) -> Any:
        parser = create(self, latex)
        parser._interp.predictionMode = PredictionMode.SLL
        parser._errHandler = BailErrorStrategy()
        return parser

    def parse(self: Any, latex: str) -> Any:
        if "create_parser" in self.__dict__:  # a nested parse (`f(x)=1` parses `f(x)` again) inside the SLL try
            return parse_ll(self, latex)
        self.create_parser = types.MethodType(create_sll, self)
        try:
            return parse_ll(self, latex)
        except ParseCancellationException:
            pass
        finally:
            self.__dict__.pop("create_parser", None)
        return parse_ll(self, latex)

    parse.two_stage = True  # type: ignore[attr-defined]
    cls.parse = parse
    return True


def _warmup() -> None:
    """Import and exercise math-verify once so the first real item is not charged for it, and
    silence its warning that its own timeouts are off (the pool enforces them)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    two_stage_parsing()
    check_pair("1", "1")


Prepared = tuple[tuple[str, str, tuple[str, ...], str, str], dict[str, Any]]


class MathVerifier(Verifier):
    """Verdicts: correct | incorrect | unparseable | timeout (| error for a missing reference)."""

    name = "math"
    # 2: issue 21 (plain-text numbers, Final Answer lines, bases, degrees, choices, math-verify's reading)
    version = f"math-verify-{version('math-verify')}+rsynth-2"

    def __init__(self, timeout: float = 5.0, workers: int = 1, memory_mb: int = 2048) -> None:
        self.timeout = timeout
        self.workers = workers
        self._pool = HardTimeoutPool(check_pair, workers=workers, timeout=timeout, warmup=_warmup, memory_mb=memory_mb)

    def _prepare(self, item: VerifyItem) -> Prepared | Verdict:
        """(worker arguments, evidence so far), or the verdict when no parsing is needed (refused by
        a guard, a choice letter, a word answer, a numeral with a base, a hedge between those)."""
        if item.reference is None or not item.reference.strip():
            return Verdict("error", False, {"reason": "no reference answer"})
        gold_x = read_answer(item.reference, reference=True)
        pred_x = read_answer(item.candidate or "")
        gold, pred = gold_x.answer or "", pred_x.answer or ""
        others = hedges(item.candidate or "") if pred_x.rule == "boxed" else ()
        evidence: dict[str, Any] = {
            "reference_answer": _clip(gold),
            "candidate_answer": _clip(pred),
            "candidate_rule": pred_x.rule,
        }
        if _brace_depth(item.candidate or "") > MAX_BRACE_DEPTH:  # no reading of such a text is an answer
            reason = f"candidate: braces nested deeper than {MAX_BRACE_DEPTH}"
            return Verdict("unparseable", False, {**evidence, "reason": reason})
        for side, ans in (("candidate", pred), ("reference", gold), *(("candidate", o) for o in others)):
            refused = guard(ans)
            if refused:
                return Verdict("unparseable", False, {**evidence, "reason": f"{side}: {refused}"})
        decided = _decide_by_rule(gold, pred, others, evidence)
        if decided is not None:
            return decided
        readings: list[str] = []
        # a reference's comma is a list separator (MATH-500's `-2,1`), unless the candidate is one decimal
        gold, rules = rewrite(gold, decimal_comma=bool(re.fullmatch(r"\s*-?\d*\.\d+\s*", pred)))
        readings += [f"reference: {r}" for r in rules]
        pred, rules = rewrite(pred, decimal_comma="," not in gold)
        readings += [f"candidate: {r}" for r in rules]
        others = tuple(rewrite(o, decimal_comma="," not in gold)[0] for o in others)
        gold_base, pred_base = base_numeral(gold), base_numeral(pred)
        if gold_base is not None or pred_base is not None:
            gold, pred = str(gold_base.value) if gold_base else gold, str(pred_base.value) if pred_base else pred
            readings.append("base subscripts evaluated")
        if readings:
            evidence["readings"] = readings
        after_box = pred_x.rule in ("final-answer", "answer-is") and last_boxed(item.candidate or "") is not None
        # the full texts, for math-verify's own reading, where they say more than the answer sent
        raw_gold = item.reference if item.reference.strip() != gold and len(item.reference) <= RAW_CHARS else ""
        raw_pred = item.candidate or ""
        raw_pred = raw_pred if raw_pred.strip() != pred and len(raw_pred) <= RAW_CHARS else ""
        if after_box or others:  # the texts' boxes are intermediate results or hedges: not re-read
            raw_gold = raw_pred = ""
            evidence["after_box"] = after_box
        return (
            exact_repeating(gold),
            exact_repeating(pred),
            tuple(exact_repeating(o) for o in others),
            raw_gold,
            raw_pred,
        ), evidence

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        prepared = [self._prepare(it) for it in items]
        pairs = {i: p[0] for i, p in enumerate(prepared) if not isinstance(p, Verdict)}
        outcomes = dict(zip(pairs, self._pool.map(list(pairs.values())))) if pairs else {}
        return [p if isinstance(p, Verdict) else self._verdict(p[1], outcomes[i]) for i, p in enumerate(prepared)]

    def _verdict(self, evidence: dict[str, Any], out: Outcome) -> Verdict:
        after_box = evidence.pop("after_box", False)
        if out.kind == "timeout":
            return Verdict("timeout", False, {**evidence, "timeout_s": self.timeout})
        if out.kind != "ok":  # MemoryError, RecursionError or a dead worker: the input defeated the parser
            return Verdict("unparseable", False, {**evidence, "reason": str(out.value)})
        status, gold_parsed, pred_parsed, reason = out.value
        evidence.update(reference_parsed=gold_parsed, candidate_parsed=pred_parsed)
        if after_box and status != "correct" and not reason:
            reason = AFTER_BOX
        if reason:
            evidence["reason"] = reason
        return Verdict(status, status == "correct", evidence)

    def close(self) -> None:
        self._pool.close()


def _decide_by_rule(gold: str, pred: str, others: tuple[str, ...], evidence: dict[str, Any]) -> Verdict | None:
    """The verdict of pairs read without a parser: a choice letter (with or without its option's
    text), a word answer, a reference numeral with a base against the same digits; None otherwise."""
    letter = choice_reference(gold)
    chosen = choice_candidate(pred) if letter else None
    if letter and chosen:
        hedged = any(choice_candidate(o) not in (None, chosen) for o in others)
        status = "correct" if chosen == letter and not hedged else "incorrect"
        return Verdict(
            status,
            status == "correct",
            {
                **evidence,
                "reference_parsed": letter,
                "candidate_parsed": chosen,
                "reason": HEDGED if hedged else "choice letter",
            },
        )
    gold_words = text_answer(gold)
    if gold_words is not None:
        pred_words = text_answer(pred, bare_choice=len(gold_words) == 1)
        hedged = any(text_answer(o, bare_choice=len(gold_words) == 1) != pred_words for o in others)
        status = "correct" if pred_words == gold_words and not hedged else "incorrect"
        reason = HEDGED if hedged else "text answer"
        return Verdict(
            status,
            status == "correct",
            {**evidence, "reference_parsed": gold_words, "candidate_parsed": pred_words or "", "reason": reason},
        )
    base = base_numeral(gold)
    if base is not None and not others and base_numeral(pred) is None and read_in_base(pred, base.base) == base.value:
        return Verdict(
            "correct",
            True,
            {
                **evidence,
                "reference_parsed": f"{base.digits} (base {base.base})",
                "candidate_parsed": pred,
                "reason": "the reference's digits in its base",
            },
        )
    return None
