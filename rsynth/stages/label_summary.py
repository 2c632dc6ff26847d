"""A label summary of an annotate-prm output: what a user checks before training on it.

Only figures of the data itself: a summary of the last process (e.g. its no-answer rate) would make a
resumed build's card differ from an uninterrupted one's over the same rows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rsynth.answers import NO_ANSWER
from rsynth.data.shards import iter_split_rows


def step_estimates(out: Path | str) -> list[dict[str, Any]]:
    """The real MC estimates of step prefixes: `tree/` nodes with at least one step.

    Not the traces' `step_mc`: its last entry is the trace's own verdict recorded as k=1 (no
    rollouts), and prefixes shared by several traces would count once per trace. The root node
    (no steps) is the question's pre-filter pass rate, reported separately.
    """
    return [n for n in iter_split_rows(out, "tree") if n["prefix_steps"]]


def label_summary(out: Path | str) -> dict[str, Any]:
    traces = list(iter_split_rows(out, "data"))
    outcomes = Counter(q["outcome"] for q in iter_split_rows(out, "questions"))
    mcs = [n["mc"] for n in step_estimates(out)]
    hard = [h for t in traces for h in (t["step_hard"] or []) if h is not None]
    with_error = [t["first_error"] for t in traces if t["first_error"] is not None and t["first_error"] >= 0]
    steps, estimated, unvalued = estimate_shares(traces)
    summary: dict[str, Any] = {f"questions {k}": v for k, v in sorted(outcomes.items())}
    summary.update(
        {
            "labelled traces": len(traces),
            "labelled steps": len(hard),
            "steps labelled correct": sum(hard),
            "traces with a first error": len(with_error),
            "all-positive traces": sum(t["first_error"] == -1 for t in traces),
            "traces with no final answer": sum(t.get("verdict") == NO_ANSWER for t in traces),
            "mean first-error index": sum(with_error) / len(with_error) if with_error else 0.0,
            "steps backed by a rollout estimate (share)": estimated / steps if steps else 0.0,
            "steps with no MC value (null soft label, share)": unvalued / steps if steps else 0.0,
            "estimated step prefixes (tree/)": len(mcs),
            "mean MC of estimated step prefixes": sum(mcs) / len(mcs) if mcs else 0.0,
        }
    )
    # every figure comes from the rows: a resumed build's summary (and card) equals an uninterrupted one's;
    # the process's own "no-answer rate this run" stays in the stage's stats table
    return summary


def estimate_shares(traces: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(steps, steps backed by a rollout estimate, steps with no MC value) over `traces`.

    A trace's last step holds its own verdict (k=1, no rollouts): a value, but not an estimate, so it
    counts as valued and not as estimated. The rest is what `export --unestimated` acts on.
    """
    steps = estimated = unvalued = 0
    for t in traces:
        mc = t.get("step_mc") or [None] * len(t.get("step_hard") or [])
        steps += len(mc)
        estimated += sum(m is not None for m in mc[:-1])
        unvalued += sum(m is None for m in mc)
    return steps, estimated, unvalued


def rollout_backed(out: Path | str) -> dict[str, bool | None]:
    """Per trace id of an annotate-prm output: whether its label rests on rollout estimates.

    False: a trace of several steps none of which (but the last, its own verdict) was estimated --
    in given mode, a trace with a right final answer is labelled all-positive this way, so its -1 is
    the verdict, not a measurement of its steps. A one-step trace counts as backed (its verdict is
    its only step's label). None: the row carries no `step_mc` to tell.
    """
    return {r["id"]: is_backed(r) for r in iter_split_rows(out, "data")}


def is_backed(row: dict[str, Any]) -> bool | None:
    """One trace row's answer for `rollout_backed`."""
    mc = row.get("step_mc")
    return None if mc is None else len(mc) < 2 or any(m is not None for m in mc[:-1])


def contradictions(rows: list[dict[str, Any]]) -> int:
    """(problem, step prefix) pairs that carry both hard labels somewhere in `rows` (must be 0)."""
    seen: dict[tuple[str, tuple[str, ...]], set] = {}
    for r in rows:
        for i, h in enumerate(r.get("step_hard") or []):
            if h is not None:
                seen.setdefault((r["problem"], tuple(r["steps"][: i + 1])), set()).add(h)
    return sum(len(v) > 1 for v in seen.values())


def rollout_report(pred: dict[str, int], gold: list[dict[str, Any]], backed: dict[str, bool | None]) -> dict[str, Any]:
    """How much of each ProcessBench accuracy comes from items labelled without rollouts."""
    out: dict[str, Any] = {}
    for name, items in (
        ("erroneous", [g for g in gold if g["label"] != -1]),
        ("correct", [g for g in gold if g["label"] == -1]),
    ):
        hits = [g for g in items if pred.get(g["id"]) == g["label"]]
        bare = [g for g in items if backed.get(g["id"]) is False]
        bare_hits = [g for g in hits if backed.get(g["id"]) is False]
        out[f"{name} items labelled without rollouts"] = len(bare)
        out[f"share of accuracy ({name}) from them"] = len(bare_hits) / len(hits) if hits else 0.0
    return out
