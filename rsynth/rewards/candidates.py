"""From a rollout's text to the item a verifier checks: pure string work, no processes.

Each domain reduces the completion to what its verdict depends on, so that the verdict cache is
keyed by (ground truth, answer) and not by the whole text:
- math: the answer rsynth's extraction rules find (by default only one the text marks itself:
  `\\boxed{}`, "the answer is", "####"; none is `no_answer`, reward 0), written as the last box after
  every other box of the text, which the math verifier checks as hedges;
- code: the last fenced code block (else the text), run against the tests in the ground truth;
- lean: the tactic block of the proof, closed under the ground truth's statement (a model cannot
  swap in an easier theorem: the statement always comes from the ground truth).
A reasoning model's `<think>...</think>` part is dropped: the answer is what follows it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rsynth.answers import extract
from rsynth.stages.codegen import FENCE, TestSpec, extract_code
from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.lean_syntax import FENCE as LEAN_FENCE
from rsynth.verifiers.lean_syntax import extract_tactics, parse_statement
from rsynth.verifiers.math import boxed_answers

DOMAINS = ("math", "code", "lean")
THINK_END = "</think>"


@dataclass(frozen=True)
class Prepared:
    """A rollout ready for its verifier: `key` identifies its verdict in the cache; `marked` says
    whether the answer came in the expected form (the optional format term)."""

    domain: str
    key: tuple[str, ...]
    item: VerifyItem
    marked: bool


@dataclass(frozen=True)
class Settled:
    """A rollout whose reward needs no verifier (no answer, no ground truth)."""

    status: str
    reason: str
    marked: bool = False


def answer_part(completion: str) -> str:
    """The text after the last `</think>` (a reasoning model's answer), else the whole completion."""
    return completion.rsplit(THINK_END, 1)[1] if THINK_END in completion else completion


def as_text(value: Any) -> str | None:
    """A ground truth as one string: verl rows sometimes hold a one-element list."""
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else json.dumps(list(value))
    return None if value is None else str(value)


def detect_domain(ground_truth: str, hint: str | None = None) -> str:
    """The domain named by `hint` (`math`, `rsynth/code`, verl's ability `theorem-proving`), else
    read from the ground truth: a JSON test spec is code, a Lean theorem is lean, the rest math."""
    if hint:
        name = str(hint).lower().rsplit("/", 1)[-1]
        if name in DOMAINS:
            return name
        if name == "theorem-proving":
            return "lean"
    text = ground_truth.strip()
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except ValueError:
            spec = None
        if isinstance(spec, dict) and "tests" in spec:
            return "code"
    if re.match(r"(?:(?:open|import)\b[^\n]*\n\s*)*(?:theorem|lemma)\s", text) and parse_statement(text):
        return "lean"
    return "math"


def prepare(domain: str, ground_truth: Any, completion: str, answer_rules: str) -> Prepared | Settled:
    truth = as_text(ground_truth)
    if truth is None or not truth.strip():
        return Settled("error", "no ground truth")
    text = answer_part(completion or "")
    if domain == "code":
        return _code(truth, text)
    if domain == "lean":
        return _lean(truth, text)
    return _math(truth, text, answer_rules)


def _math(truth: str, text: str, answer_rules: str) -> Prepared | Settled:
    found = extract(text, answer_rules)
    if found.answer is None:
        return Settled("no_answer", "no answer the extraction rules accept")
    boxes = boxed_answers(text)
    if not boxes or _squash(boxes[-1]) != _squash(found.answer):
        boxes.append(found.answer)  # an answer stated after the boxes is the answer; the boxes stay as hedges
    # the verifier reads the last box as the answer and checks the others as hedges
    candidate = "\n".join(f"\\boxed{{{b}}}" for b in boxes)
    return Prepared("math", ("math", truth.strip(), candidate), VerifyItem(truth, candidate), found.explicit)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _code(truth: str, text: str) -> Prepared | Settled:
    try:
        spec = TestSpec.from_json(truth)
    except (ValueError, KeyError, TypeError):
        spec = TestSpec(truth)  # plain assert lines
    program = extract_code(text)
    if not program.strip():
        return Settled("error", "empty program")
    return Prepared("code", ("code", truth, program), spec.item(program), bool(FENCE.search(text)))


def _lean(truth: str, text: str) -> Prepared | Settled:
    st = parse_statement(truth)
    if st is None:
        return Settled("error", "the ground truth is no Lean theorem statement")
    tactics = extract_tactics(text)
    if not tactics.strip():
        return Settled("error", "empty proof")
    proof = st.with_proof(tactics)
    return Prepared(
        "lean", ("lean", truth, proof), VerifyItem(st.with_opens(st.text), proof), bool(LEAN_FENCE.search(text))
    )
