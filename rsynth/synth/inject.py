"""SPC-style injected errors, rule-based: rewrite one step of a correct solution with an arithmetic
error and carry the wrong value through the later steps (no model).

"SPC: Evolving Self-Play Critic via Adversarial Games for LLM Reasoning": a sneaky generator turns one
step of a correct solution into a subtle error and continues from it, so the trace's first error is
known by construction. For procedural solutions the rewrite and the continuation are mechanical:

- a step computes `A op B = C` (or states `... = C`); the mutation changes C by an arithmetic slip
  (C +- a small delta), a sign flip (-C), a swapped operand (B op A, for - and /) or a wrong
  operation (another of + - * /), recomputing C where the rewritten expression defines it;
- every later step has the old value replaced by the new one, and each of its own `A op B = C`
  recomputed from the (changed) operands, so the error propagates to the final answer as a solver
  that trusts the wrong step would carry it.

All arithmetic is on `Fraction`s parsed from digit strings with a regex (nothing is evaluated).
Whether the final answer is now wrong is for the math verifier to say (`rsynth.stages.inject`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction

MUTATIONS = ("arithmetic_slip", "sign", "swapped_operand", "wrong_operation")
NUM = r"-?\d+(?:\.\d+)?"
# `A op B = C` not inside a longer chain (no operator just before A); `$` before C allowed (GSM8K money)
EXPR = re.compile(rf"(?<![\w.*/×+\-])(?<![*/×+\-] )({NUM})\s*([+\-*/×]| x )\s*({NUM})\s*=\s*\$?({NUM})(?![\w]|\.\d)")
RESULT = re.compile(rf"=\s*\$?({NUM})(?![\w]|\.\d)")
NUMBER = re.compile(rf"(?<![\w.]){NUM}(?![\w]|\.\d)")
OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "×": lambda a, b: a * b,
    "x": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else None,
}


def fmt(value: Fraction) -> str:
    """An integer as digits, else a decimal with at most 4 places (trailing zeros dropped)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.4f}".rstrip("0").rstrip(".")


def num(text: str) -> Fraction:
    return Fraction(text)


@dataclass(frozen=True)
class Mutation:
    """What was changed: the step, the kind, the step's text before and after, the values."""

    step: int
    kind: str
    original: str
    rewritten: str
    old_value: str
    new_value: str


def _candidates(step: str) -> list[tuple[str, re.Match[str]]]:
    """(mutation kind, the match it rewrites) possible in one step."""
    out: list[tuple[str, re.Match[str]]] = []
    for m in EXPR.finditer(step):
        out += [("arithmetic_slip", m), ("sign", m), ("wrong_operation", m)]
        if m.group(2).strip() in "-/" and m.group(1) != m.group(3):
            out.append(("swapped_operand", m))
    if not out:
        out += [(kind, m) for m in RESULT.finditer(step) for kind in ("arithmetic_slip", "sign")]
    return out


def _rewrite(step: str, kind: str, m: re.Match[str], rng: random.Random) -> tuple[str, Fraction, Fraction] | None:
    """The step with the mutation applied, and (old value, new value) of the result; None if no change."""
    if m.re is EXPR:
        a, op, b, c = m.group(1), m.group(2).strip(), m.group(3), m.group(4)
        old = num(c)
        if kind in ("arithmetic_slip", "sign"):  # only the stated result changes, the rest as written
            new = -old if kind == "sign" else old + rng.choice([-2, -1, 1, 2, 10])
            if new == old:
                return None
            return step[: m.start(4)] + fmt(new) + step[m.end(4) :], old, new
        if kind == "swapped_operand":
            value = OPS[op](num(b), num(a))
            if value is None:
                return None
            new, text = value, f"{b} {op} {a}{step[m.end(3) : m.start(4)]}{fmt(value)}"
        else:
            others = [o for o in "+-*/" if o != op.replace("×", "*").replace("x", "*")]
            o = rng.choice(others)
            value = OPS[o](num(a), num(b))
            if value is None:
                return None
            new, text = value, f"{a} {o} {b}{step[m.end(3) : m.start(4)]}{fmt(value)}"
        if new == old:
            return None
        return step[: m.start()] + text + step[m.end() :], old, new
    old = num(m.group(1))
    new = -old if kind == "sign" else old + rng.choice([-2, -1, 1, 2, 10])
    if new == old:
        return None
    return step[: m.start(1)] + fmt(new) + step[m.end(1) :], old, new


def _carry(step: str, values: dict[Fraction, Fraction]) -> tuple[str, dict[Fraction, Fraction]]:
    """A later step with changed values substituted and its own results recomputed; returns the
    step and the values it changed in turn."""

    def sub(m: re.Match[str]) -> str:
        v = num(m.group(0))
        return fmt(values[v]) if v in values else m.group(0)

    text = NUMBER.sub(sub, step)
    changed: dict[Fraction, Fraction] = {}

    def recompute(m: re.Match[str]) -> str:
        value = OPS[m.group(2).strip()](num(m.group(1)), num(m.group(3)))
        if value is None or value == num(m.group(4)):
            return m.group(0)
        # the step's stated result was the old operands' result: it now follows the new ones
        before = next((k for k, v in values.items() if v == num(m.group(4))), num(m.group(4)))
        changed[before] = value
        return m.group(0)[: m.start(4) - m.start()] + fmt(value)

    text = EXPR.sub(recompute, text)
    return text, changed


def inject(
    steps: list[str], rng: random.Random, kinds: tuple[str, ...] = MUTATIONS, last_error_step: int | None = None
) -> tuple[list[str], Mutation] | None:
    """One rule-based injected error in `steps` (a step before `last_error_step`, default: any but the
    last, which usually only states the answer) carried to the end; None when no step can be mutated."""
    limit = len(steps) - 1 if last_error_step is None else last_error_step
    options = [
        (i, kind, m) for i, s in enumerate(steps[: max(limit, 1)]) for kind, m in _candidates(s) if kind in kinds
    ]
    rng.shuffle(options)
    for i, kind, m in options:
        done = _rewrite(steps[i], kind, m, rng)
        if done is None:
            continue
        text, old, new = done
        values = {old: new}
        out = steps[:i] + [text]
        for later in steps[i + 1 :]:
            carried, more = _carry(later, values)
            values.update(more)
            out.append(carried)
        return out, Mutation(i, kind, steps[i], text, fmt(old), fmt(new))
    return None


MODEL_TEMPLATE = (
    "Below is a correct step-by-step solution. Rewrite step {number} so that it contains one subtle but real mistake "
    "(a wrong calculation, a sign error, a swapped or wrong operation, a misread quantity), then continue the solution "
    "from that step consistently, as a solver who believes the mistaken step would, to a final answer. Keep steps 1 to "
    "{before} exactly as they are. Do not mention the mistake. Write every step as 'Step i: ...' and end with "
    "'The answer is: X'.\n\nProblem: {problem}\n\nSolution:\n{solution}"
)


def model_prompt(problem: str, steps: list[str], step: int) -> str:
    solution = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
    return MODEL_TEMPLATE.format(number=step + 1, before=step, problem=problem, solution=solution)


_STEP = re.compile(r"^\s*Step\s+(\d+)\s*[:.)]\s*", re.I)


def parse_model_rewrite(reply: str, steps: list[str], step: int) -> list[str] | None:
    """The rewritten trace: the original steps before `step`, then the reply's steps from `step` on
    (its 'Step i:' lines; the step prefix removed); None when the reply has none or leaves step
    `step` unchanged."""
    found: dict[int, str] = {}
    current: int | None = None
    for line in reply.splitlines():
        m = _STEP.match(line)
        if m:
            current = int(m.group(1)) - 1
            found[current] = line[m.end() :].strip()
        elif current is not None and line.strip():
            found[current] += " " + line.strip()
    tail = [found[i] for i in sorted(found) if i >= step]
    if not tail or step not in found or found[step].strip() == steps[step].strip():
        return None
    last = tail[-1]
    if "answer" not in last.lower():
        m = re.search(r"The answer is:?\s*(.+)", reply)
        if m:
            tail.append(f"The answer is: {m.group(1).strip()}")
    return steps[:step] + tail
