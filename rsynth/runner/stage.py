"""The stage runner: everything a stage run does besides turning items into rows.

A stage module declares a `Stage`: its manifest name, output splits, how its run key is derived, and a
`work` factory that opens the stage's resources (a verifier pool, a scheduler) and returns a `Work`:
`validate` (record → item or RowError), `process` (a batch of items → rows) or `stream` (items →
rows as they finish), and `summary` (the run's own counts → the stats table). `execute` owns the rest:

1. the run key, computed from the input as its partition sees it (`keyed`), so partitions never resume
   into each other;
2. the `ShardSetWriter` (resume from its cursor, refuse another run's directory);
3. the "already complete" answer, given without opening the stage's resources;
4. the input partition (`--num-shards/--shard-index`, Ray blocks) and `--limit`;
5. progress, elapsed time and the final stats, written into the manifest.

Every stage, CLI or recipe, local or a Ray block, goes through `execute`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pyarrow as pa

from rsynth.data.readers import Record, RowError
from rsynth.data.shards import ALREADY_COMPLETE, ShardSetWriter  # noqa: F401 - ALREADY_COMPLETE is part of this API
from rsynth.runner.loop import Process, Stream, run_stage
from rsynth.runner.partition import Partition, keyed, partition_records


@dataclass
class Target:
    """Where one run reads and writes, and the knobs every stage shares."""

    input: str
    out: Path
    shard_size: int = 1000
    overwrite: bool = False
    limit: int | None = None
    quiet: bool = False
    partition: Partition | None = None


class RunOptions(TypedDict, total=False):
    """The run options every `run_<stage>` function takes as keywords: `Target`'s fields after input
    and out (the CLI passes `RunParams.stage_kwargs()`), declared here once."""

    shard_size: int
    overwrite: bool
    limit: int | None
    quiet: bool
    partition: Partition | None


@dataclass
class Counts:
    """What the runner measured; `previous` is the stats an interrupted earlier run checkpointed."""

    seen: int
    rows: dict[str, int]
    seconds: float
    previous: dict[str, Any] = field(default_factory=dict)


def split_summary(c: Counts, labels: dict[str, str], *, seconds: bool = True) -> dict[str, Any]:
    """The usual stats table: input rows, then `label (split/)` for each output split in `labels`,
    then the bad input rows (errors/) and, unless told not to, the seconds."""
    table = {"input rows": c.seen, **{f"{label} ({split}/)": c.rows[split] for split, label in labels.items()}}
    table["bad input rows (errors/)"] = c.rows["errors"]
    return {**table, "seconds": c.seconds} if seconds else table


def with_counts(c: Counts, counts: Counter[str], table: dict[str, Any]) -> dict[str, Any]:
    """A stage's summary `table`, then its reason `counts` (this run's, added to those an interrupted
    earlier run checkpointed: `Work(checkpoint_stats=True)`) and the seconds."""
    return {**table, "counts": dict(Counter(c.previous.get("counts", {})) + counts), "seconds": c.seconds}


def _default_summary(counts: Counts) -> dict[str, Any]:
    return {"input rows": counts.seen, **{f"{split} rows": n for split, n in counts.rows.items()}}


@dataclass
class Work:
    """The stage's own part: validation, and either a batch `process` or a `stream` (see runner.loop)."""

    validate: Callable[[Record], Any]
    process: Process | None = None
    stream: Stream | None = None
    batch_size: int = 1000
    description: str = "processing"
    summary: Callable[[Counts], dict[str, Any]] = _default_summary
    checkpoint_stats: bool = False  # write summary() into the manifest after every batch (resumable counters)
    status: Callable[[], str] | None = (
        None  # a live part of the progress line (e.g. sequences in flight), read on every refresh
    )


@dataclass
class Stage:
    """A stage as the runner sees it. `key(keyed_input)` gives the run key; `records(target)`
    replaces reading `target.input` (e.g. generated problems); `work()` is only opened when there is
    work to do."""

    name: str
    splits: dict[str, pa.Schema]
    key: Callable[[str], str]
    work: Callable[[], AbstractContextManager[Work]]
    records: Callable[[Target], Iterable[Record | RowError]] | None = None
    primary: str = "data"


def ready(work: Work) -> Callable[[], AbstractContextManager[Work]]:
    """A `Stage.work` for work that holds no resources."""
    return lambda: nullcontext(work)


def execute(stage: Stage, target: Target) -> dict[str, Any]:
    """Run `stage` over `target` to completion (resuming a killed run of the same key); returns its stats."""
    writer = ShardSetWriter(
        target.out,
        stage.splits,
        stage=stage.name,
        run_key=stage.key(keyed(target.input, target.partition)),
        shard_size=target.shard_size,
        primary=stage.primary,
        overwrite=target.overwrite,
        inputs=[target.input] if stage.records is None else [],
    )
    if writer.complete:
        done = writer.skip_complete()
        refuse_whole_input_failure(writer, target)
        return done
    previous = dict(writer.stats)
    records = (
        stage.records(target)
        if stage.records is not None
        else partition_records(target.input, target.partition, target.limit, target.out)
    )
    with stage.work() as work:
        t0 = time.perf_counter()

        def counts() -> Counts:
            return Counts(seen, {s: writer.rows(s) for s in writer.splits}, time.perf_counter() - t0, previous)

        def checkpoint() -> None:
            writer.stats = work.summary(counts())
            writer.checkpoint()

        seen = 0
        seen = run_stage(
            records,
            writer,
            validate=work.validate,
            process=work.process,
            stream=work.stream,
            batch_size=work.batch_size,
            limit=target.limit,
            description=work.description,
            quiet=target.quiet,
            status=work.status,
            after_batch=checkpoint if work.checkpoint_stats else None,
        )
        stats = work.summary(counts())
    writer.close(stats)
    refuse_whole_input_failure(writer, target)
    return stats


def refuse_whole_input_failure(writer: ShardSetWriter, target: Target) -> None:
    """A run whose every row went to errors/ for one and the same reason failed as a whole (a missing
    `--field` mapping, the wrong file): one line and exit 2, not a "successful" empty output. The
    errors split stays written, so the rows can still be read."""
    from rsynth.data.readers import InputError, field_hint
    from rsynth.data.shards import iter_split_rows

    if (
        "errors" not in writer.splits
        or not writer.rows("errors")
        or any(writer.rows(s) for s in writer.splits if s != "errors")
    ):
        return
    reasons = {(e["field"], e["reason"]) for e in iter_split_rows(target.out, "errors")}
    if len(reasons) != 1:
        return
    ((_, reason),) = reasons
    raise InputError(
        f"{target.input}: every row ({writer.rows('errors')}) went to {target.out}/errors/ for the same reason: "
        f"{reason}{field_hint(reason)}"
    )
