"""Per-trace label fields derived from per-step Monte Carlo estimates.

Searches store only what they measured -- for each step, the MC value of the prefix ending with it,
the k it came from and how many rollouts were correct (None where never estimated; OmegaPRM estimates
only the prefixes its binary search visits). Every label type is a pure function of those counts, so
hard, soft, thresholded, progress and min-form labels can be re-derived later without re-sampling.

Hard-label rules (`rule`):
- ``he``: Math-Shepherd's hard estimate, a step is good iff some rollout from it was correct (mc > 0).
- ``first_error``: OmegaPRM's, steps before the located first error are good, it and later ones bad.
- ``threshold=X``: a step is good iff mc >= X (X in [0, 1]).
Soft labels need no rule: they are `step_mc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RULES = ("he", "first_error", "threshold=X")


def parse_rule(rule: str) -> tuple[str, float | None]:
    """Split `rule` into its name and threshold, rejecting unknown rules early (at config time)."""
    if rule in ("he", "first_error"):
        return rule, None
    if rule.startswith("threshold="):
        try:
            x = float(rule.removeprefix("threshold="))
        except ValueError:
            x = -1.0
        if 0.0 <= x <= 1.0:
            return "threshold", x
    raise ValueError(f"unknown label rule {rule!r} (expected one of {', '.join(RULES)} with X in [0, 1])")


def hard_labels(mc: Sequence[float | None], rule: str, first_error: int | None = None) -> list[bool | None]:
    """Good/bad per step; None where the rule needs an MC value that was never estimated."""
    name, x = parse_rule(rule)
    if name == "first_error":
        if first_error is None:
            raise ValueError("the first_error rule needs the located first error (-1 for none)")
        return [first_error < 0 or i < first_error for i in range(len(mc))]
    if name == "he":
        return [None if m is None else m > 0 for m in mc]
    return [None if m is None else m >= x for m in mc]


def first_error_of(hard: Sequence[bool | None]) -> int:
    """ProcessBench's label: index of the earliest step labelled bad, -1 if none is."""
    return next((i for i, h in enumerate(hard) if h is False), -1)


def progress(mc: Sequence[float | None], root_mc: float | None = None) -> list[float | None]:
    """Rewarding-Progress advantage MC_i - MC_{i-1}, with MC_{-1} the question's MC when known.

    A step whose own or predecessor value was never estimated gets None rather than a guess.
    """
    prev = [root_mc, *mc[:-1]]
    return [None if a is None or b is None else a - b for a, b in zip(mc, prev)]


def relative_progress(mc: Sequence[float | None], root_mc: float | None = None) -> list[float | None]:
    """GenPRM's Relative Progress Estimation MC_i / MC_{i-1} (MC_{-1} the question's MC when known):
    above 1 a step made the solution likelier to succeed, below 1 less likely. None where either
    value was never estimated or the predecessor's is 0 (nothing left to lose: the ratio is undefined)."""
    prev = [root_mc, *mc[:-1]]
    return [None if a is None or not b else a / b for a, b in zip(mc, prev)]


def min_value(mc: Sequence[float | None]) -> float | None:
    """Min-form credit (PURE): a trace is worth its weakest estimated step."""
    known = [m for m in mc if m is not None]
    return min(known) if known else None


def derive_labels(
    method: str,
    mc: Sequence[float | None],
    k: Sequence[int | None],
    correct: Sequence[int | None],
    *,
    rule: str,
    first_error: int | None = None,
    root_mc: float | None = None,
) -> dict[str, Any]:
    """The schema's label fields for one trace; `label_method` records method and hard rule."""
    if not len(mc) == len(k) == len(correct):
        raise ValueError("mc, k and correct need one entry per step")
    hard = hard_labels(mc, rule, first_error)
    row = {
        "label_method": f"{method}:{rule}",
        "step_mc": list(mc),
        "step_k": list(k),
        "step_correct": list(correct),
        "step_hard": hard,
        "step_progress": progress(mc, root_mc),
        "step_relative_progress": relative_progress(mc, root_mc),
        "first_error": first_error if parse_rule(rule)[0] == "first_error" else first_error_of(hard),
        "trace_value_min": min_value(mc),
    }
    return row
