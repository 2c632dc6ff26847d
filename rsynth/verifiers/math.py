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

from rsynth.answers import extract_final_answer, last_boxed
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem
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
_REPEATING = re.compile(r"(?<![\d.])(\d*)\.(\d*)(?:\\overline\s*\{(\d+)\}|\\overline\s*(\d)|\\dot\s*\{(\d)\}|\\dot\s*(\d)|\((\d+)\))")
HEDGED = "hedged"


def answer_text(text: str) -> str:
    """The final answer inside a candidate: last `\\boxed{}`, "the answer is ...", or the text itself."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    stated = extract_final_answer(text)
    if stated is not None:  # "is $0.5$." comes back as "0.5$": the delimiters are not the answer
        return stated.strip().strip("$").strip()
    return text.strip()


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


def _relation_set(expr: Any) -> tuple[Any, Any] | None:
    """(interval set, variable) of a simple inequality in one variable against numbers (`x > 2`,
    `2 < x \\le 5`, `x < -1 \\text{ or } x > 2`), built directly; None for anything else."""
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
    rel = expr if expr.lhs.is_Symbol else expr.reversed
    x, bound = rel.lhs, rel.rhs
    if not x.is_Symbol or bound.free_symbols or not bound.is_extended_real:
        return None
    build = {">": lambda: sympy.Interval.open(bound, sympy.oo), ">=": lambda: sympy.Interval(bound, sympy.oo),
             "<": lambda: sympy.Interval.open(-sympy.oo, bound), "<=": lambda: sympy.Interval(-sympy.oo, bound)}
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


def check_pair(reference: str, candidate: str, others: tuple[str, ...] = ()) -> tuple[str, str, str, str]:
    """Worker side: (status, reference parsed, candidate parsed, reason) for two guarded answers;
    `others` are the candidate's other boxed answers (any that disagrees: hedged)."""
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]
    gold = parse(_latex(reference), extraction_config=config, parsing_timeout=None)
    pred = parse(_latex(candidate), extraction_config=config, parsing_timeout=None)
    if not gold or not pred:
        side = "reference" if not gold else "candidate"
        return "unparseable", _clip(gold[0] if gold else ""), _clip(pred[0] if pred else ""), f"{side} did not parse"
    if others and _many_values(gold[0]):  # a set answer boxed element by element is one list
        pred = parse(_latex(", ".join((*others, candidate))), extraction_config=config, parsing_timeout=None) or pred
        others = ()
    parsed = _clip(gold[0]), _clip(pred[0])
    for other in others:
        alt = parse(_latex(other), extraction_config=config, parsing_timeout=None)
        if not alt or not verify(alt, pred, timeout_seconds=None):
            return "incorrect", *parsed, HEDGED
    if _one_value(gold[0]) and _many_values(pred[0]):
        return "incorrect", *parsed, HEDGED
    intervals = _as_intervals(gold[0], pred[0])
    if intervals is not None:
        return ("correct" if intervals[0] == intervals[1] else "incorrect"), *parsed, "compared as intervals"
    ok = verify(gold, pred, timeout_seconds=None)
    reason = ""
    if ok and _exact_conflict(gold[0], pred[0], percent="%" in reference + candidate):
        ok, reason = False, "exact values differ (beyond float precision)"
    return ("correct" if ok else "incorrect"), *parsed, reason


def two_stage_parsing() -> bool:
    """Make latex2sympy's ANTLR parser try fast SLL prediction first and fall back to full LL
    only when SLL fails, the standard two-stage ANTLR strategy. Profiling showed full-context
    prediction (`execATNWithFullContext`) as half of the time of set, interval and inequality
    answers; on all MATH-500 answers, their perturbations and the test table the parses are
    identical. Returns False (and changes nothing) where latex2sympy's internals differ."""
    import types

    from antlr4.atn.PredictionMode import PredictionMode
    from antlr4.error.ErrorStrategy import BailErrorStrategy
    from antlr4.error.Errors import ParseCancellationException
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
        self.create_parser = types.MethodType(create_sll, self)
        try:
            return parse_ll(self, latex)
        except ParseCancellationException:
            pass
        finally:
            del self.create_parser
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


class MathVerifier(Verifier):
    """Verdicts: correct | incorrect | unparseable | timeout (| error for a missing reference)."""

    name = "math"
    version = f"math-verify-{version('math-verify')}"

    def __init__(self, timeout: float = 5.0, workers: int = 1, memory_mb: int = 2048) -> None:
        self.timeout = timeout
        self.workers = workers
        self._pool = HardTimeoutPool(check_pair, workers=workers, timeout=timeout, warmup=_warmup, memory_mb=memory_mb)

    def _prepare(self, item: VerifyItem) -> tuple[str, str, tuple[str, ...]] | Verdict:
        """(reference, candidate, other boxed answers) for the worker, or the verdict when no
        parsing is needed (refused by a guard, a word answer, a hedge between word answers)."""
        if item.reference is None or not item.reference.strip():
            return Verdict("error", False, {"reason": "no reference answer"})
        gold = answer_text(item.reference)
        pred = answer_text(item.candidate or "")
        others = hedges(item.candidate or "")
        evidence = {"reference_answer": _clip(gold), "candidate_answer": _clip(pred)}
        for side, ans in (("candidate", pred), ("reference", gold), *(("candidate", o) for o in others)):
            refused = guard(ans)
            if refused:
                return Verdict("unparseable", False, {**evidence, "reason": f"{side}: {refused}"})
        gold_words = text_answer(gold)
        if gold_words is not None:
            pred_words = text_answer(pred, bare_choice=len(gold_words) == 1)
            hedged = any(text_answer(o, bare_choice=len(gold_words) == 1) != pred_words for o in others)
            status = "correct" if pred_words == gold_words and not hedged else "incorrect"
            reason = HEDGED if hedged else "text answer"
            return Verdict(status, status == "correct", {**evidence, "reference_parsed": gold_words, "candidate_parsed": pred_words or "", "reason": reason})
        return exact_repeating(gold), exact_repeating(pred), tuple(exact_repeating(o) for o in others)

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        prepared = [self._prepare(it) for it in items]
        pairs = {i: p for i, p in enumerate(prepared) if not isinstance(p, Verdict)}
        outcomes = dict(zip(pairs, self._pool.map(list(pairs.values())))) if pairs else {}
        return [p if isinstance(p, Verdict) else self._verdict(p, outcomes[i]) for i, p in enumerate(prepared)]

    def _verdict(self, pair: tuple[str, str, tuple[str, ...]], out: Outcome) -> Verdict:
        evidence: dict[str, Any] = {"reference_answer": _clip(pair[0]), "candidate_answer": _clip(pair[1])}
        if out.kind == "timeout":
            return Verdict("timeout", False, {**evidence, "timeout_s": self.timeout})
        if out.kind != "ok":  # MemoryError, RecursionError or a dead worker: the input defeated the parser
            return Verdict("unparseable", False, {**evidence, "reason": str(out.value)})
        status, gold_parsed, pred_parsed, reason = out.value
        evidence.update(reference_parsed=gold_parsed, candidate_parsed=pred_parsed)
        if reason:
            evidence["reason"] = reason
        return Verdict(status, status == "correct", evidence)

    def close(self) -> None:
        self._pool.close()
