"""`rsynth filter-critiques`: keep the judge's critiques whose step verdicts agree with reference labels.

ThinkPRM ("Process Reward Models That Think") trains a generative verifier on verification chains of
thought, keeping only the chains whose step verdicts match reliable step labels (about 1K filtered
chains from PRM800K). Here the chains are `rsynth judge` critiques (each judgement's full text is
kept in `judge_critiques`, its parsed first error in `judge_votes`), and the reference is the trace's
own labels: MC labels from annotate-prm, gold ProcessBench labels (`import processbench`), or
injected-error labels (`generate injected-errors`).

A critique's verdict is its first error e: steps before e correct, step e wrong (none wrong for -1).
It is kept when e and the reference first error are both -1, or both name steps at most
`--tolerance` apart, and when the share of labelled reference steps (`step_hard` True/False) it
calls the same way is at least `--min-step-agreement`. Each kept critique is one `data/` row (what
`export --format sft-critique` writes); every other critique is a `filtered/` row with its reason;
rows that are not judged, labelled traces go to `errors/`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from rsynth.annotators.judge import critic_prompt
from rsynth.config import param
from rsynth.data.readers import Record, RowError
from rsynth.data.schema import ERROR_SCHEMA
from rsynth.errors import UserError
from rsynth.runner.loop import Item, Rows
from rsynth.runner.partition import Partition
from rsynth.runner.stage import Counts, Stage, Target, Work, execute, ready
from rsynth.stages.run_key import digest

CRITIQUE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("trace_id", pa.string()),
        ("judgement", pa.int64()),
        ("problem", pa.string()),
        ("steps", pa.list_(pa.string())),
        ("prompt", pa.string()),
        ("critique", pa.string()),
        ("critique_first_error", pa.int64()),
        ("reference_first_error", pa.int64()),
        ("reference_method", pa.string()),
        ("step_agreement", pa.float64()),
        ("reason", pa.string()),
    ]
)


@dataclass
class CritiqueFilterConfig:
    """`filter-critiques` parameters (CLI options and recipe keys)."""

    tolerance: int = param(
        0,
        "--tolerance",
        "Keep critiques whose first error is at most this many steps from the reference's (0 = exact).",
    )
    min_step_agreement: float = param(
        0.0,
        "--min-step-agreement",
        "Also require this share of the reference's labelled steps to get the same verdict from the critique.",
    )

    def __post_init__(self) -> None:
        if self.tolerance < 0 or not 0.0 <= self.min_step_agreement <= 1.0:
            raise UserError("--tolerance must be >= 0 and --min-step-agreement in [0, 1]")


def step_verdicts(first_error: int, num_steps: int) -> list[bool | None]:
    """A first-error verdict as per-step verdicts: correct before it, wrong at it, unknown after."""
    if first_error < 0:
        return [True] * num_steps
    return [True] * first_error + [False] + [None] * (num_steps - first_error - 1)


def agreement(critique: list[bool | None], reference: list[bool | None]) -> float:
    """Share of the reference's labelled steps that the critique labels the same way (unknown counts as different)."""
    pairs = [(c, r) for c, r in zip(critique, reference) if r is not None]
    return sum(c == r for c, r in pairs) / len(pairs) if pairs else 0.0


def decide(critique: int | None, reference: int, steps: float, config: CritiqueFilterConfig) -> tuple[bool, str]:
    if critique is None:
        return False, "unparsed_verdict"
    if critique == -1 or reference == -1:
        if critique != reference:
            return False, "critique_misses_error" if critique == -1 else "critique_flags_correct_trace"
    elif abs(critique - reference) > config.tolerance:
        return False, "first_error_mismatch"
    if steps < config.min_step_agreement:
        return False, "low_step_agreement"
    return True, "agrees" if critique == reference else "within_tolerance"


def _validate(record: Record) -> dict[str, Any] | RowError:
    d = record.data
    if not d.get("judge_critiques") or d.get("judge_votes") is None:
        return RowError.of(
            record,
            "not a judged trace (run rsynth judge; it keeps each critique in judge_critiques)",
            "judge_critiques",
        )
    if d.get("first_error") is None or d.get("step_hard") is None:
        return RowError.of(
            record,
            "no reference labels (first_error, step_hard): judge labelled traces (annotate-prm, import "
            "processbench + labels, generate injected-errors)",
            "first_error",
        )
    return d


def critique_stage(config: CritiqueFilterConfig) -> Stage:
    reasons: Counter[str] = Counter()

    def process(items: list[Item]) -> dict[int, Rows]:
        out: dict[int, Rows] = {}
        for it in items:
            row = it.value
            steps, ref = list(row["steps"]), int(row["first_error"])
            prompt = critic_prompt(row["problem"], steps)
            rows: Rows = []
            for j, (text, vote) in enumerate(zip(row["judge_critiques"], row["judge_votes"])):
                share = agreement(step_verdicts(vote, len(steps)), list(row["step_hard"])) if vote is not None else 0.0
                kept, reason = decide(vote, ref, share, config)
                reasons[reason] += 1
                rows.append(
                    (
                        "data" if kept else "filtered",
                        {
                            "id": f"{row['id']}/c{j}",
                            "trace_id": row["id"],
                            "judgement": j,
                            "problem": row["problem"],
                            "steps": steps,
                            "prompt": prompt,
                            "critique": text,
                            "critique_first_error": vote,
                            "reference_first_error": ref,
                            "reference_method": row.get("label_method"),
                            "step_agreement": share,
                            "reason": reason,
                        },
                    )
                )
            out[it.index] = rows
        return out

    def summary(c: Counts) -> dict[str, Any]:
        total = Counter(c.previous.get("reasons", {})) + reasons
        kept, filtered = c.rows["data"], c.rows["filtered"]
        return {
            "input rows": c.seen,
            "kept critiques (data/)": kept,
            "filtered critiques (filtered/)": filtered,
            "bad input rows (errors/)": c.rows["errors"],
            "keep rate": kept / (kept + filtered) if kept + filtered else 0.0,
            "reasons": dict(total),
        }

    def key(inputs: str) -> str:
        return digest(["filter-critiques", inputs, asdict(config)])

    work = Work(
        _validate, process, batch_size=1000, description="filtering critiques", summary=summary, checkpoint_stats=True
    )
    return Stage(
        "filter-critiques",
        {"data": CRITIQUE_SCHEMA, "filtered": CRITIQUE_SCHEMA, "errors": ERROR_SCHEMA},
        key=key,
        work=ready(work),
    )


def run_filter_critiques(
    input: str,
    out: Path,
    config: CritiqueFilterConfig,
    *,
    shard_size: int = 1000,
    overwrite: bool = False,
    quiet: bool = True,
    partition: Partition | None = None,
) -> dict[str, Any]:
    """One row per critique of every judged trace of `input`: kept (data/) or filtered (filtered/, with the reason)."""
    return execute(critique_stage(config), Target(input, Path(out), shard_size, overwrite, None, quiet, partition))
