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
    summary: dict[str, Any] = {f"questions {k}": v for k, v in sorted(outcomes.items())}
    summary.update({
        "labelled traces": len(traces),
        "labelled steps": len(hard),
        "steps labelled correct": sum(hard),
        "traces with a first error": len(with_error),
        "all-positive traces": sum(t["first_error"] == -1 for t in traces),
        "traces with no final answer": sum(t.get("verdict") == NO_ANSWER for t in traces),
        "mean first-error index": sum(with_error) / len(with_error) if with_error else 0.0,
        "estimated step prefixes (tree/)": len(mcs),
        "mean MC of estimated step prefixes": sum(mcs) / len(mcs) if mcs else 0.0,
    })
    # every figure comes from the rows: a resumed build's summary (and card) equals an uninterrupted one's;
    # the process's own "no-answer rate this run" stays in the stage's stats table
    return summary
