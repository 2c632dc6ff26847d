"""A label summary of an annotate-prm output: what a user checks before training on it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from rsynth.data.shards import MANIFEST, iter_split_rows

NO_ANSWER_STAT = "no-answer rate this run"


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
    summary.update({
        "labelled traces": len(traces),
        "labelled steps": len(hard),
        "steps labelled correct": sum(hard),
        "traces with a first error": len(with_error),
        "all-positive traces": sum(t["first_error"] == -1 for t in traces),
        "mean first-error index": sum(with_error) / len(with_error) if with_error else 0.0,
        "steps backed by a rollout estimate (share)": estimated / steps if steps else 0.0,
        "steps with no MC value (null soft label, share)": unvalued / steps if steps else 0.0,
        "estimated step prefixes (tree/)": len(mcs),
        "mean MC of estimated step prefixes": sum(mcs) / len(mcs) if mcs else 0.0,
    })
    stats = json.loads((Path(out) / MANIFEST).read_text()).get("stats", {}) if (Path(out) / MANIFEST).exists() else {}
    if NO_ANSWER_STAT in stats:  # rollouts from which no answer rule extracted anything (math)
        summary["rollouts with no answer (share, last run)"] = stats[NO_ANSWER_STAT]
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
