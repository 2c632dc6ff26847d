"""`rsynth import processbench`: ProcessBench items as rsynth traces, ready for annotate-prm or eval-labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsynth.data.formats import answer_after_hashes, processbench_trace
from rsynth.data.readers import FieldSpec, RowError, map_fields, read_records
from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA
from rsynth.runner.loop import Item, Rows
from rsynth.runner.stage import Counts, Stage, Target, Work, execute, ready

SPECS = [
    FieldSpec("id", str),
    FieldSpec("problem", str),
    FieldSpec("steps", list),
    FieldSpec("final_answer_correct", bool),
]


def answer_table(answers: str | None, question_field: str, answer_field: str) -> dict[str, str]:
    """Reference answers by problem text (GSM8K-style '#### N' endings parsed)."""
    table: dict[str, str] = {}
    for rec in read_records(answers) if answers else ():
        if not isinstance(rec, RowError) and isinstance(rec.data.get(question_field), str):
            raw = str(rec.data.get(answer_field, ""))
            table[rec.data[question_field].strip()] = answer_after_hashes(raw) or raw.strip()
    return table


def import_processbench(
    file: str,
    out: Path,
    answers: str | None,
    *,
    question_field: str = "question",
    answer_field: str = "answer",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write every ProcessBench item of `file` as a trace (data/), bad rows to errors/."""
    table = answer_table(answers, question_field, answer_field)
    joined = 0

    def process(items: list[Item]) -> dict[int, Rows]:
        nonlocal joined
        rows = {it.index: processbench_trace(it.value, table) for it in items}
        joined += sum(row["reference_answer"] is not None for row in rows.values())
        return {i: [("data", row)] for i, row in rows.items()}

    def summary(c: Counts) -> dict[str, Any]:
        return {"traces": c.rows["data"], "with reference answer": joined, "bad rows (errors/)": c.rows["errors"]}

    work = Work(lambda rec: map_fields(rec, SPECS, {}), process, description="importing", summary=summary)
    stage = Stage(
        "import-processbench",
        {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA},
        key=lambda _: json.dumps([file, answers]),
        work=ready(work),
    )
    return execute(stage, Target(file, Path(out), overwrite=overwrite, quiet=True))
