"""Consensus filtering: keep a trace only where its MC first error and the judge's agree.

"The Lessons of Developing Process Reward Models in Mathematical Reasoning": MC labels alone train
worse PRMs than judge or human labels; keeping only the traces where both sources name the same
first error improves PRM quality and data efficiency. Input: `rsynth judge` output run on
MC-labelled traces (`first_error` from annotate-prm, `judge_first_error` from the judge).

Rules (`decide`): both -1 -> kept; both name a step within `tolerance` of each other -> kept; one
says -1 and the other names a step -> filtered (an all-correct trace is kept only when both say -1);
a missing label on either side, or a judge vote below `min_agreement` -> filtered. Every filtered
trace goes to `filtered/` with its `consensus_reason`; rows that are not judged traces go to `errors/`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rsynth.config import param
from rsynth.data.readers import Record, RowError
from rsynth.data.schema import CONSENSUS_SCHEMA, ERROR_SCHEMA
from rsynth.errors import UserError
from rsynth.runner.loop import Item, Rows
from rsynth.runner.partition import Partition
from rsynth.runner.stage import Counts, Stage, Target, Work, execute, ready
from rsynth.stages.run_key import digest

KEPT_REASONS = ("both_correct", "same_first_error", "within_tolerance")
CONFUSION_CAP = 5  # first errors at this step or later share one confusion bucket


@dataclass
class ConsensusConfig:
    """The consensus filter's parameters (`rsynth.config.param`: CLI options and recipe keys)."""

    tolerance: int = param(
        0, "--tolerance", "Keep traces whose MC and judge first errors are at most this many steps apart (0 = exact)."
    )
    min_agreement: float = param(
        0.0,
        "--min-agreement",
        "Also require the judge's vote agreement (winner's share of judgements) to be at least this.",
    )

    def __post_init__(self) -> None:
        if self.tolerance < 0:
            raise UserError(f"--tolerance must be >= 0, got {self.tolerance}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise UserError(f"--min-agreement must be in [0, 1], got {self.min_agreement}")


def decide(mc: int | None, judge: int | None, agreement: float | None, config: ConsensusConfig) -> tuple[bool, str]:
    """(kept, reason) for one trace's MC and judge first errors."""
    if mc is None:
        return False, "no_mc_label"
    if judge is None:
        return False, "no_judge_verdict"
    if (agreement or 0.0) < config.min_agreement:
        return False, "low_judge_agreement"
    if mc == -1 or judge == -1:
        if mc == judge:
            return True, "both_correct"
        return False, "judge_only_error" if mc == -1 else "mc_only_error"
    if mc == judge:
        return True, "same_first_error"
    if abs(mc - judge) <= config.tolerance:
        return True, "within_tolerance"
    return False, "first_error_mismatch"


def _validate(record: Record) -> dict[str, Any] | RowError:
    if "judge_first_error" not in record.data or "first_error" not in record.data:
        return RowError(
            record.source,
            record.row,
            "judge_first_error",
            "not a judged, MC-labelled trace (run annotate-prm, then judge)",
            json.dumps(record.data, default=str)[:2000],
        )
    return record.data


def consensus_stage(config: ConsensusConfig, *, limit: int | None = None) -> Stage:
    """consensus as a runner stage: each judged trace to data/ (agreement) or filtered/ (with the reason)."""
    reasons: Counter[str] = Counter()

    def process(items: list[Item]) -> dict[int, Rows]:
        rows: dict[int, Rows] = {}
        for it in items:
            row = it.value
            kept, reason = decide(row["first_error"], row["judge_first_error"], row.get("judge_agreement"), config)
            reasons[reason] += 1
            rows[it.index] = [("data" if kept else "filtered", {**row, "consensus_reason": reason})]
        return rows

    def summary(c: Counts) -> dict[str, Any]:
        kept, filtered = c.rows["data"], c.rows["filtered"]
        return {
            "input rows": c.seen,
            "kept (data/)": kept,
            "filtered (filtered/)": filtered,
            "bad input rows (errors/)": c.rows["errors"],
            "keep rate": kept / (kept + filtered) if kept + filtered else 0.0,
            "tolerance": config.tolerance,
            **{f"reason {r} (this run)": n for r, n in sorted(reasons.items())},
        }

    def key(inputs: str) -> str:
        # a limited run is another run (its output holds fewer rows); unlimited keys stay as they were
        return digest(["consensus", inputs, asdict(config), *([limit] if limit is not None else [])])

    return Stage(
        "consensus",
        {"data": CONSENSUS_SCHEMA, "filtered": CONSENSUS_SCHEMA, "errors": ERROR_SCHEMA},
        key=key,
        work=ready(Work(_validate, process, description="consensus filtering", summary=summary)),
    )


def run_consensus(
    input: str,
    out: Path,
    config: ConsensusConfig,
    *,
    shard_size: int = 1000,
    overwrite: bool = False,
    limit: int | None = None,
    quiet: bool = True,
    partition: Partition | None = None,
) -> dict[str, Any]:
    """Route each judged trace of `input` to `out`/data (agreement) or `out`/filtered (with the reason)."""
    return execute(
        consensus_stage(config, limit=limit), Target(input, Path(out), shard_size, overwrite, limit, quiet, partition)
    )


def _bucket(first_error: int | None) -> str:
    if first_error is None:
        return "none"
    return str(first_error) if first_error < CONFUSION_CAP else f"{CONFUSION_CAP}+"


def confusion(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """MC-vs-judge first-error confusion over judged traces: counts per (MC bucket, judge bucket),
    exact agreement and the share of traces both call all-correct."""
    cells: Counter[tuple[str, str]] = Counter()
    exact = 0  # counted on the values, not the buckets: 7 vs 9 share the capped bucket but disagree
    for r in rows:
        mc, judge = r.get("first_error"), r.get("judge_first_error")
        cells[_bucket(mc), _bucket(judge)] += 1
        exact += mc is not None and mc == judge
    order = ["-1", *map(str, range(CONFUSION_CAP)), f"{CONFUSION_CAP}+", "none"]
    used = [b for b in order if any(b in cell for cell in cells)]
    total = sum(cells.values())
    return {"buckets": used, "cells": cells, "traces": total, "exact agreement": exact / total if total else 0.0}


def confusion_markdown(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The confusion as a Markdown table: MC first error down, judge first error across."""
    c = confusion(rows)
    if not c["traces"]:
        return []
    lines = ["| MC \\ judge | " + " | ".join(c["buckets"]) + " |", "|---|" + "---:|" * len(c["buckets"])]
    for m in c["buckets"]:
        lines.append(f"| **{m}** | " + " | ".join(str(c["cells"].get((m, j), 0)) for j in c["buckets"]) + " |")
    return lines + [
        "",
        f"Exact first-error agreement: {c['exact agreement']:.3f} of {c['traces']} judged traces "
        "(-1 = no error; `none` = no label).",
        "",
    ]
