"""The `filter` recipe stage: keep problems whose sampled pass rate lies in LO:HI.

OmegaPRM only learns from questions the policy sometimes solves: a pass rate of 0 or 1 gives no
first error to find. `generate solutions` measures the pass rate per problem; this stage turns its
traces back into one problem row per problem (or keeps the traces), so `annotate-prm` searches only
mixed-outcome questions. Problems outside the range go to `filtered/` with their pass rate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsynth.data.readers import Record, RowError
from rsynth.data.schema import ERROR_SCHEMA, PROBLEM_SCHEMA, TRACE_SCHEMA
from rsynth.runner.loop import Item, Rows
from rsynth.runner.partition import Partition
from rsynth.runner.stage import Counts, Stage, Target, Work, execute, ready
from rsynth.stages.run_key import digest


def _problem_row(trace: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": trace["problem_id"],
        "domain": trace.get("domain") or "math",
        "problem": trace["problem"],
        "reference_answer": trace["reference_answer"],
        "gold_steps": [],
        "source": f"pass-rate:{trace['pass_rate']:.3f}",
        "metadata": json.dumps({"pass_rate": trace["pass_rate"], "trace_id": trace["id"]}),
        "source_ref": trace.get("source_ref"),  # the original input row, carried on (readers.source_ref)
    }


def filter_pass_rate(
    input: str,
    out: Path,
    bounds: tuple[float, float],
    emit: str,
    *,
    shard_size: int = 1000,
    overwrite: bool = False,
    partition: Partition | None = None,
) -> dict[str, Any]:
    """Route each trace (emit=traces) or each problem's first trace (emit=problems) to data/ or filtered/."""
    return execute(filter_stage(bounds, emit), Target(input, Path(out), shard_size, overwrite, None, True, partition))


def _validate(record: Record) -> dict[str, Any] | RowError:
    rate = record.data.get("pass_rate")
    if not isinstance(rate, (int, float)) or "problem_id" not in record.data:
        return RowError(
            record.source,
            record.row,
            "pass_rate",
            "not a trace with a pass rate (run a solutions stage first)",
            json.dumps(record.data, default=str)[:2000],
        )
    return record.data


def filter_stage(bounds: tuple[float, float], emit: str) -> Stage:
    schema = PROBLEM_SCHEMA if emit == "problems" else TRACE_SCHEMA
    lo, hi = bounds

    def process(items: list[Item]) -> dict[int, Rows]:
        out_rows: dict[int, Rows] = {}
        for it in items:
            trace = it.value
            if emit == "problems" and trace.get("sample_index", 0) != 0:
                continue  # one problem row per problem: its first sample carries the pass rate
            split = "data" if lo <= trace["pass_rate"] <= hi else "filtered"
            out_rows[it.index] = [(split, _problem_row(trace) if emit == "problems" else trace)]
        return out_rows

    def summary(c: Counts) -> dict[str, Any]:
        return {
            "input rows": c.seen,
            f"kept {emit} (data/)": c.rows["data"],
            f"filtered {emit} (filtered/)": c.rows["filtered"],
            "bad input rows (errors/)": c.rows["errors"],
            "pass-rate range": f"{lo}:{hi}",
        }

    key = lambda inputs: digest(["filter", inputs, bounds, emit])  # noqa: E731
    return Stage(
        "filter",
        {"data": schema, "filtered": schema, "errors": ERROR_SCHEMA},
        key=key,
        work=ready(Work(_validate, process, batch_size=1000, description="filtering by pass rate", summary=summary)),
    )
