"""Final-answer equivalence for math, on math-verify, in worker processes with a hard timeout.

Why it is built this way:
- math-verify's own timeouts use `signal.alarm`, which breaks in threads (REFERENCE §2), so they are
  switched off and each item runs in a `HardTimeoutPool` worker that is killed when it overruns.
- Only math-verify's LaTeX extraction is used: its `ExprExtractionConfig` feeds raw text to
  sympy's `parse_expr`, which calls `eval`. LaTeX goes through an ANTLR grammar (latex2sympy) and
  never reaches Python's evaluator, so model text stays data.
- math-verify compares numbers to ~15 significant digits, which makes 1/2004! "equal" 1/2006!; when
  both sides are exact rationals we compare them exactly instead.
- Cheap guards run in the parent before anything is parsed (length, brace depth, digit runs), so
  megabyte strings and deep nesting are `unparseable` at once instead of burning a worker's timeout.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from rsynth.steps import extract_final_answer, last_boxed
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


def answer_text(text: str) -> str:
    """The final answer inside a candidate: last `\\boxed{}`, "the answer is ...", or the text itself."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    stated = extract_final_answer(text)
    if stated is not None:  # "is $0.5$." comes back as "0.5$": the delimiters are not the answer
        return stated.strip().strip("$").strip()
    return text.strip()


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


def check_pair(reference: str, candidate: str) -> tuple[str, str, str, str]:
    """Worker side: (status, reference parsed, candidate parsed, reason) for two guarded answers."""
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]
    gold = parse(_latex(reference), extraction_config=config, parsing_timeout=None)
    pred = parse(_latex(candidate), extraction_config=config, parsing_timeout=None)
    if not gold or not pred:
        side = "reference" if not gold else "candidate"
        return "unparseable", _clip(gold[0] if gold else ""), _clip(pred[0] if pred else ""), f"{side} did not parse"
    ok = verify(gold, pred, timeout_seconds=None)
    reason = ""
    if ok and _exact_conflict(gold[0], pred[0], percent="%" in reference + candidate):
        ok, reason = False, "exact values differ (beyond float precision)"
    return ("correct" if ok else "incorrect"), _clip(gold[0]), _clip(pred[0]), reason


def _warmup() -> None:
    """Import and exercise math-verify once so the first real item is not charged for it, and
    silence its warning that its own timeouts are off (the pool enforces them)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    check_pair("1", "1")


class MathVerifier(Verifier):
    """Verdicts: correct | incorrect | unparseable | timeout (| error for a missing reference)."""

    name = "math"
    version = f"math-verify-{version('math-verify')}"

    def __init__(self, timeout: float = 5.0, workers: int = 1, memory_mb: int = 2048) -> None:
        self.timeout = timeout
        self.workers = workers
        self._pool = HardTimeoutPool(check_pair, workers=workers, timeout=timeout, warmup=_warmup, memory_mb=memory_mb)

    def _prepare(self, item: VerifyItem) -> tuple[str, str] | Verdict:
        if item.reference is None or not item.reference.strip():
            return Verdict("error", False, {"reason": "no reference answer"})
        gold = answer_text(item.reference)
        pred = answer_text(item.candidate or "")
        evidence = {"reference_answer": _clip(gold), "candidate_answer": _clip(pred)}
        for side, ans in (("candidate", pred), ("reference", gold)):
            refused = guard(ans)
            if refused:
                return Verdict("unparseable", False, {**evidence, "reason": f"{side}: {refused}"})
        gold_words = text_answer(gold)
        if gold_words is not None:
            pred_words = text_answer(pred, bare_choice=len(gold_words) == 1)
            status = "correct" if pred_words == gold_words else "incorrect"
            return Verdict(status, status == "correct", {**evidence, "reference_parsed": gold_words, "candidate_parsed": pred_words or "", "reason": "text answer"})
        return gold, pred

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        prepared = [self._prepare(it) for it in items]
        pairs = {i: p for i, p in enumerate(prepared) if not isinstance(p, Verdict)}
        outcomes = dict(zip(pairs, self._pool.map(list(pairs.values())))) if pairs else {}
        return [p if isinstance(p, Verdict) else self._verdict(p, outcomes[i]) for i, p in enumerate(prepared)]

    def _verdict(self, pair: tuple[str, str], out: Outcome) -> Verdict:
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
