"""The stage loop: read records → validate → process → write rows in input order, with resume.

Two shapes of stage work feed the same writer:

- **batch** (`process`): batches sit at fixed input positions ([0, B), [B, 2B), ...), so a resumed run
  re-forms exactly the batches of the interrupted one; the writer's cursor then says which rows are
  already committed, and rows of earlier inputs are dropped.
- **streaming** (`stream`): the stage pulls validated items from an iterator at its own pace, keeps as
  many in flight as it likes, and yields ``(input index, rows)`` as each finishes, in any order. A
  `ReorderBuffer` holds finished inputs until every earlier one is done, then writes them in input
  order, so the output (and its resume cursor) is the same as a batch run's. This is the hook for an
  asynchronous, continuously refilled scheduler (e.g. annotate-prm's); items before the cursor are
  never handed to it.

The per-stage work is a plain function of validated items, which keeps stages free of I/O and resume
logic (the datatrove split between pipeline steps and executors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from rsynth.data.readers import Record, RowError
from rsynth.data.shards import ShardSetWriter
from rsynth.errors import PromptTooLong

Rows = list[tuple[str, dict[str, Any]]]  # (split, row) pairs for one input
Process = Callable[[list["Item"]], dict[int, Rows]]
Stream = Callable[[Iterator["Item"]], Iterator[tuple[int, Rows]]]


@dataclass
class Item:
    index: int
    record: Record
    value: Any  # the stage's validated view of the record


class LiveColumn(ProgressColumn):
    """Text asked of the stage at every refresh (rich redraws ~10 times a second on its own thread),
    so a count such as sequences in flight stays live while no input row finishes."""

    def __init__(self, status: Callable[[], str]) -> None:
        super().__init__()
        self.status = status

    def render(self, task: Task) -> Text:
        return Text(self.status(), style="cyan")


def progress_bar(disable: bool = False, status: Callable[[], str] | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *([LiveColumn(status)] if status is not None else []),
        disable=disable,
        transient=False,
    )


def batches(records: Iterable[Any], size: int, limit: int | None = None) -> Iterator[list[tuple[int, Any]]]:
    """(input index, record) lists of `size` at fixed positions, stopping after `limit` records.

    The one batching function of the package: stage loops, `verify` and `decontaminate` use it."""
    it = iter(records) if limit is None else islice(records, limit)
    index = 0
    while batch := list(islice(it, size)):
        yield list(enumerate(batch, index))
        index += len(batch)


class ReorderBuffer:
    """Writes each input's rows in input order, whatever order they finish in.

    Inputs before `start` (committed by an earlier run) are dropped; an input with no rows is still
    put, so that the inputs after it can be written."""

    def __init__(self, writer: ShardSetWriter, start: int) -> None:
        self.writer = writer
        self.next = start
        self.waiting: dict[int, Rows] = {}

    def put(self, index: int, rows: Rows) -> None:
        if index < self.next:
            return
        self.waiting[index] = rows
        while self.next in self.waiting:
            for split, row in self.waiting.pop(self.next):
                self.writer.add(split, row, self.next)
            self.writer.input_done(self.next)
            self.next += 1

    @property
    def pending(self) -> int:
        """Finished inputs held back because an earlier one is still running."""
        return len(self.waiting)


def _view(rec: Record | RowError, validate: Callable[[Record], Any]) -> Any:
    return rec if isinstance(rec, RowError) else validate(rec)


def run_stage(
    records: Iterable[Record | RowError],
    writer: ShardSetWriter,
    *,
    validate: Callable[[Record], Any],
    process: Process | None = None,
    stream: Stream | None = None,
    batch_size: int = 1000,
    limit: int | None = None,
    total: int | None = None,
    description: str = "processing",
    quiet: bool = False,
    after_batch: Callable[[], None] | None = None,
    status: Callable[[], str] | None = None,
) -> int:
    """Run a stage to completion with `process` (batches) or `stream`; returns the input rows seen.

    Error rows go to `errors`. `total` sizes the progress bar. `after_batch` runs after each written
    batch (e.g. to checkpoint stats); `status` is a live text on the progress line. Ctrl-C commits every finished input before the interrupt
    propagates, so a re-run resumes there."""
    if (process is None) == (stream is None):
        raise ValueError("run_stage needs exactly one of process= and stream=")
    start = writer.cursor  # inputs before this are committed; the writer drops re-emitted partial rows
    buffer = ReorderBuffer(writer, start)
    with progress_bar(disable=quiet, status=status) as bar:
        task = bar.add_task(description, total=total if total is not None else _total(records, limit))
        bar.update(task, completed=start)
        try:
            if stream is not None:
                return _run_stream(
                    records, buffer, validate, stream, limit, lambda: bar.update(task, completed=buffer.next)
                )
            seen = 0
            for batch in batches(records, batch_size, limit):
                seen = batch[-1][0] + 1
                if seen > start:
                    _emit(batch, buffer, validate, process)
                    if after_batch is not None:
                        after_batch()
                bar.update(task, completed=seen)
            return seen
        except KeyboardInterrupt:
            writer.checkpoint()
            raise


def _total(records: Iterable[Record | RowError], limit: int | None) -> int | None:
    """The bar's total: the input's row count where its reader knows it cheaply, capped by --limit."""
    known = getattr(records, "total", None)
    if known is None:
        return limit
    return known if limit is None else min(known, limit)


def _emit(batch: list[tuple[int, Any]], buffer: ReorderBuffer, validate, process: Process) -> None:
    outputs: dict[int, Rows] = {}
    items = []
    for i, rec in batch:
        view = _view(rec, validate)
        if isinstance(view, RowError):
            outputs[i] = [("errors", view.as_row())]
        else:
            items.append(Item(i, rec, view))
    if items:
        outputs.update(_process(process, items))
    for i, _ in batch:
        buffer.put(i, outputs.get(i, []))


def _process(process: Process, items: list[Item]) -> dict[int, Rows]:
    """`process(items)`, except that a prompt too long for the model costs only its own row: the
    batch is re-run one row at a time and the rows whose prompts are too long go to `errors` with a
    too_long reason, while the others are kept (one 5 MB problem used to end the whole run). A
    `stream` stage catches `PromptTooLong` per item itself."""
    try:
        return process(items)
    except PromptTooLong as exc:
        if len(items) == 1:
            return {items[0].index: [("errors", RowError.of(items[0].record, str(exc)).as_row())]}
    out: dict[int, Rows] = {}
    for it in items:
        out.update(_process(process, [it]))
    return out


def _run_stream(
    records, buffer: ReorderBuffer, validate, stream: Stream, limit: int | None, tick: Callable[[], None]
) -> int:
    seen, start = 0, buffer.next

    def items() -> Iterator[Item]:
        nonlocal seen
        for i, rec in enumerate(records if limit is None else islice(records, limit)):
            seen = i + 1
            if i < start:
                continue  # committed by an earlier run
            view = _view(rec, validate)
            if isinstance(view, RowError):
                buffer.put(i, [("errors", view.as_row())])
            else:
                yield Item(i, rec, view)

    for index, rows in stream(items()):
        buffer.put(index, rows)
        tick()
    if buffer.pending:
        raise RuntimeError(
            f"stream stage left {buffer.pending} finished inputs unwritten (an earlier input never finished)"
        )
    return seen
