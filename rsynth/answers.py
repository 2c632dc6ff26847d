"""Final-answer extraction from solution text, shared by `verify`, `generate solutions` and `annotate-prm`.

Rules, in order of specificity: the last `\\boxed{...}` (braces balanced), a `Final Answer:` line (the
Minerva / Llama closing sentence "Final Answer: The final answer is $X$. I hope it is correct."),
"The answer is ...", GSM8K's `#### ...`, and, as the default chain's fallback (`--answer-fallback`), the
last number of the last step -- see docs/annotators.md for the measurements behind that default.
`extract` reports which rule fired and whether it was an explicit marking (a box, "final answer",
"the answer is", `####`) or a guess, so a caller can refuse guesses where they mislead (a truncated
generation's last number is not its answer).

Real model output ends in chat tokens (`<|im_end|>`, `<|eot_id|>`, `</s>`) and politeness ("I hope it
is correct.", "I hope this helps!"): they are dropped, and an answer stated after the last box (boxes
of intermediate results, then "so the answer is 10") wins over the box. Only regular expressions and
brace counting run here: model text is never evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rsynth.steps import split_steps

ANSWER_IS = re.compile(r"(?i)the\s+(?:final\s+)?answer\s+is\s*[:：]?[ \t]*")
FINAL_ANSWER = re.compile(r"(?i)\bfinal\s+answer\s*[:：][ \t]*")
HASHES = re.compile(r"####\s*(.+)")
# end-of-turn tokens of common chat templates, and what follows them
CHAT_TAIL = re.compile(
    r"(?:<\|(?:im_end|im_start|eot_id|endoftext|end|eom_id|end_of_text|start_header_id)\|>"
    r"|</s>|<end_of_turn>|<\｜end▁of▁sentence\｜>).*",
    re.S,
)
# politeness after the answer sentence: not part of the answer
POLITE = re.compile(
    r"(?i)[.!]?\s*(?:I hope (?:it|this|that) (?:is correct|helps)|Hope (?:this|it) helps|Thank you|Thanks)\b.*$", re.S
)


def strip_chat_tail(text: str) -> str:
    """`text` without a trailing end-of-turn token and whatever a template put after it."""
    return CHAT_TAIL.sub("", text)


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


_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
# where a stated answer ends: a sentence end (not a decimal point), or ", which ..." style prose
_SENTENCE_END = re.compile(r"[.。!?](?=\s|$)|,\s+(?!and\b|or\b)(?=[A-Za-z]{2,})|;\s")


def _clean_tail(ans: str) -> str:
    """The answer at the start of `ans`, the text after "the answer is": a math-delimited span when it
    opens with one, else its first line up to the end of the sentence; politeness, markdown bold and
    the delimiters are dropped ("is $5$. I hope it is correct." -> "5")."""
    ans = POLITE.sub("", strip_chat_tail(ans)).strip().lstrip("*").strip()
    inner = last_boxed(ans) if ans.startswith(("\\boxed", "\\fbox", "$\\boxed", "\\(\\boxed", "\\[\\boxed")) else None
    if inner is not None:
        return inner
    for left, right in _DELIMS:
        if ans.startswith(left):
            end = ans.find(right, len(left))
            if end > len(left):
                return ans[len(left) : end].strip()
    ans = ans.splitlines()[0].strip() if ans else ""
    cut = _SENTENCE_END.search(ans)
    if cut:
        ans = ans[: cut.start()]
    # sentence punctuation may sit outside the math delimiters ("is $5$."), so drop it before and after
    ans = re.sub(r"[.。*]+$", "", ans.strip()).strip()
    ans = re.sub(r"^\$+|\$+$", "", ans).strip()
    return ans


def extract_final_answer(text: str) -> str | None:
    """The solution's final answer as explicitly marked (box, "answer is", ####), or None: no guess."""
    return extract_answer(text, ("boxed", "final-answer", "answer-is", "hashes"))


# --- the answer fallback chain (`--answer-fallback`) -------------------------------------------------

NUMBER = re.compile(r"(?:(?<![\w)])-)?\d[\d,]*(?:\.\d+)?")  # "5-3" is a subtraction, not -3
ANSWER_RULES = ("boxed", "final-answer", "answer-is", "hashes", "last-math", "last-number")
# Measured on real GSM8K / ProcessBench solution text (bench/answer_extraction.py, docs/annotators.md):
# the number fallback turns most marker-less right answers from "no answer" into right ones.
DEFAULT_ANSWER_FALLBACK = "boxed,final-answer,answer-is,hashes,last-number"
NO_ANSWER = "no_answer"  # the verdict of a solution from which no rule extracts an answer


def parse_answer_fallback(spec: str) -> tuple[str, ...]:
    """`"boxed,answer-is"` -> ("boxed", "answer-is"); unknown or repeated names are a ValueError."""
    rules = tuple(r.strip() for r in spec.split(",") if r.strip())
    bad = [r for r in rules if r not in ANSWER_RULES]
    if not rules or bad or len(set(rules)) != len(rules):
        raise ValueError(
            f"--answer-fallback {spec!r}: expected a comma-separated order of {', '.join(ANSWER_RULES)} (each once)"
        )
    return rules


def _box_end(text: str) -> int:
    """Index just past the last `\\boxed{...}` / `\\fbox{...}`, or -1 when there is none."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0 or last_boxed(text) is None:
        return -1
    depth = 0
    for j in range(text.find("{", idx), len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return j + 1
    return -1


def _boxed(text: str) -> str | None:
    """The last box, unless the text states its answer in prose after it (the boxes were
    intermediate results): then the statement's rule fires instead."""
    end = _box_end(text)
    if end < 0:
        return None
    after = text[end:]
    if ANSWER_IS.search(after) or FINAL_ANSWER.search(after):
        return None
    return last_boxed(text)


def _stated(text: str, pattern: re.Pattern[str]) -> str | None:
    heads = list(pattern.finditer(strip_chat_tail(text)))
    if not heads:
        return None
    ans = text[heads[-1].end() :]  # the last statement wins: "The answer is: The answer is: 20" -> 20
    ans = ANSWER_IS.sub("", ans.lstrip(), count=1) if ANSWER_IS.match(ans.lstrip()) else ans
    inner = last_boxed(ans)
    return inner if inner is not None else (_clean_tail(ans) or None)


def _answer_is(text: str) -> str | None:
    return _stated(text, ANSWER_IS)


def _final_answer(text: str) -> str | None:
    """`Final Answer: ...` / `final answer: ...`, the Minerva closing line included."""
    return _stated(text, FINAL_ANSWER)


def _hashes(text: str) -> str | None:
    matches = HASHES.findall(strip_chat_tail(text))
    return (_clean_tail(matches[-1]) or None) if matches else None


def last_number(text: str) -> str | None:
    """The last number written in the last step (auto split), thousands commas dropped.

    "Sara now has 7 + 6 = 13 pencils." -> "13". Only plain decimals: a LaTeX fraction's last number is
    its denominator, which is why the rule comes last in the chain (measured in docs/annotators.md).
    """
    steps = split_steps(POLITE.sub("", strip_chat_tail(text)))
    found = NUMBER.findall(steps[-1]) if steps else []
    return found[-1].replace(",", "") if found else None


_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<!\\)\$(.+?)(?<!\\)\$", re.S)


def last_math(text: str) -> str | None:
    """The last `$...$`, `$$...$$`, `\\(...\\)` or `\\[...\\]` span of an unmarked text (a guess, as
    math-verify makes when nothing is boxed): the verifier's reading of a long text with no marker."""
    spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN.finditer(strip_chat_tail(text))]
    spans = [s.strip() for s in spans if s.strip()]
    return spans[-1] if spans else None


_EXTRACTORS = {
    "boxed": _boxed,
    "final-answer": _final_answer,
    "answer-is": _answer_is,
    "hashes": _hashes,
    "last-math": last_math,
    "last-number": last_number,
}


EXPLICIT_RULES = frozenset(
    {"boxed", "final-answer", "answer-is", "hashes"}
)  # the text marks its answer; the rest guess


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
