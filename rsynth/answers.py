"""Final-answer extraction from solution text, shared by `verify`, `generate solutions` and `annotate-prm`.

Rules, in order of specificity: the last `\\boxed{...}` (braces balanced), "The answer is ...", GSM8K's
`#### ...`, and, as the default chain's fallback (`--answer-fallback`), the last number of the last
step -- see docs/annotators.md for the measurements behind that default. `extract` reports which rule
fired and whether it was an explicit marking (a box, "the answer is", `####`) or a guess, so a caller
can refuse guesses where they mislead (a truncated generation's last number is not its answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rsynth.steps import split_steps

ANSWER_IS = re.compile(r"(?i)the\s+(?:final\s+)?answer\s+is\s*[:：]?[ \t]*")
HASHES = re.compile(r"####\s*(.+)")

def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` or `\\fbox{...}`, with nested braces balanced."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    i = text.find("{", idx)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _clean_tail(ans: str) -> str:
    ans = ans.strip().splitlines()[0].strip() if ans.strip() else ""
    # sentence punctuation may sit outside the math delimiters ("is $5$."), so drop it before and after
    ans = re.sub(r"[.。]+$", "", ans).strip()
    ans = re.sub(r"^\$+|\$+$", "", ans).strip()
    return ans


def extract_final_answer(text: str) -> str | None:
    """The solution's final answer as explicitly marked (box, "answer is", ####), or None: no guess."""
    return extract_answer(text, ("boxed", "answer-is", "hashes"))


# --- the answer fallback chain (`--answer-fallback`) -------------------------------------------------

NUMBER = re.compile(r"(?:(?<![\w)])-)?\d[\d,]*(?:\.\d+)?")  # "5-3" is a subtraction, not -3
ANSWER_RULES = ("boxed", "answer-is", "hashes", "last-number")
# Measured on real GSM8K / ProcessBench solution text (bench/answer_extraction.py, docs/annotators.md):
# the number fallback turns most marker-less right answers from "no answer" into right ones.
DEFAULT_ANSWER_FALLBACK = "boxed,answer-is,hashes,last-number"
NO_ANSWER = "no_answer"  # the verdict of a solution from which no rule extracts an answer


def parse_answer_fallback(spec: str) -> tuple[str, ...]:
    """`"boxed,answer-is"` -> ("boxed", "answer-is"); unknown or repeated names are a ValueError."""
    rules = tuple(r.strip() for r in spec.split(",") if r.strip())
    bad = [r for r in rules if r not in ANSWER_RULES]
    if not rules or bad or len(set(rules)) != len(rules):
        raise ValueError(f"--answer-fallback {spec!r}: expected a comma-separated order of {', '.join(ANSWER_RULES)} (each once)")
    return rules


def _answer_is(text: str) -> str | None:
    heads = list(ANSWER_IS.finditer(text))
    if not heads:
        return None
    ans = text[heads[-1].end() :]  # the last statement wins: "The answer is: The answer is: 20" -> 20
    inner = last_boxed(ans)
    return inner if inner is not None else (_clean_tail(ans) or None)


def _hashes(text: str) -> str | None:
    matches = HASHES.findall(text)
    return (_clean_tail(matches[-1]) or None) if matches else None


def last_number(text: str) -> str | None:
    """The last number written in the last step (auto split), thousands commas dropped.

    "Sara now has 7 + 6 = 13 pencils." -> "13". Only plain decimals: a LaTeX fraction's last number is
    its denominator, which is why the rule comes last in the chain (measured in docs/annotators.md).
    """
    steps = split_steps(text)
    found = NUMBER.findall(steps[-1]) if steps else []
    return found[-1].replace(",", "") if found else None


_EXTRACTORS = {"boxed": last_boxed, "answer-is": _answer_is, "hashes": _hashes, "last-number": last_number}


EXPLICIT_RULES = frozenset({"boxed", "answer-is", "hashes"})  # the text marks its answer; the rest guess


@dataclass(frozen=True)
class Extraction:
    """What `extract` found: the answer (None: no rule matched) and the rule that fired."""

    answer: str | None
    rule: str | None

    @property
    def explicit(self) -> bool:
        """True when the text marked its answer itself, False for a guess or nothing."""
        return self.rule in EXPLICIT_RULES


def extract(text: str, chain: tuple[str, ...] | str = DEFAULT_ANSWER_FALLBACK) -> Extraction:
    """The first answer any rule of `chain` finds, in order, with the rule that found it."""
    rules = parse_answer_fallback(chain) if isinstance(chain, str) else chain
    for rule in rules:
        ans = _EXTRACTORS[rule](text)
        if ans is not None:
            return Extraction(ans, rule)
    return Extraction(None, None)


def extract_answer(text: str, chain: tuple[str, ...] | str = DEFAULT_ANSWER_FALLBACK) -> str | None:
    """The first answer any rule of `chain` finds, in order; None means "no answer found" (a third
    outcome beside right and wrong: it is reported, and never sent to the verifier)."""
    return extract(text, chain).answer
