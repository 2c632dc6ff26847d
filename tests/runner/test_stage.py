"""The stage executor: batch and streaming work give the same output; partitions, resume, stats."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
import pytest

from rsynth.data.readers import RowError
from rsynth.data.schema import ERROR_SCHEMA
from rsynth.data.shards import iter_split_rows
from rsynth.runner.loop import Item, batches
from rsynth.runner.partition import Partition
from rsynth.runner.stage import ALREADY_COMPLETE, Stage, Target, Work, execute, ready

SCHEMA = pa.schema([("id", pa.int64()), ("double", pa.int64())])


def _input(path, n: int = 10):
    rows = [{"id": i, "x": i} if i % 4 != 3 else {"id": i} for i in range(n)]  # every 4th row lacks x: an error row
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _validate(record):
    x = record.data.get("x")
    return x if isinstance(x, int) else RowError(record.source, record.row, "x", "no x", "{}")


def _row(it: Item):
    return [("data", {"id": it.record.data["id"], "double": 2 * it.value})]


def _batch(items):
    return {it.index: _row(it) for it in items}


def _stream(items: Iterator[Item]):
    """Holds three items in flight and finishes them newest first: out of input order."""
    held: list[Item] = []
    for it in items:
        held.append(it)
        if len(held) == 3:
            while held:
                done = held.pop()
                yield done.index, _row(done)
    while held:
        done = held.pop()
        yield done.index, _row(done)


def _stage(work: Work) -> Stage:
    return Stage("test", {"data": SCHEMA, "errors": ERROR_SCHEMA}, key=lambda inputs: f"k:{inputs}", work=ready(work))


def _data(out):
    return [r["id"] for r in iter_split_rows(out, "data")], [r["row"] for r in iter_split_rows(out, "errors")]


def test_batches_sit_at_fixed_positions():
    assert [[i for i, _ in b] for b in batches("abcdefg", 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [[x for _, x in b] for b in batches("abcdefg", 3, limit=4)] == [["a", "b", "c"], ["d"]]


def test_stream_writes_in_input_order_like_batches(tmp_path):
    src = _input(tmp_path / "in.jsonl")
    a = execute(_stage(Work(_validate, _batch, batch_size=4)), Target(src, tmp_path / "batch", quiet=True))
    b = execute(_stage(Work(_validate, stream=_stream)), Target(src, tmp_path / "stream", quiet=True))
    assert _data(tmp_path / "batch") == _data(tmp_path / "stream") == ([0, 1, 2, 4, 5, 6, 8, 9], [4, 8])
    assert a == b == {"input rows": 10, "data rows": 8, "errors rows": 2}
    again = execute(_stage(Work(_validate, _batch)), Target(src, tmp_path / "batch", quiet=True))
    assert again["note"] == ALREADY_COMPLETE


def test_a_stream_that_drops_an_input_is_an_error(tmp_path):
    def lossy(items):
        for it in items:
            if it.index != 1:
                yield it.index, _row(it)

    with pytest.raises(RuntimeError, match="never finished"):
        execute(
            _stage(Work(_validate, stream=lossy)), Target(_input(tmp_path / "in.jsonl"), tmp_path / "out", quiet=True)
        )


@pytest.mark.parametrize(
    "work", [Work(_validate, _batch, batch_size=3), Work(_validate, stream=_stream)], ids=["batch", "stream"]
)
def test_partitions_concatenate_to_the_whole_run(tmp_path, work):
    src = _input(tmp_path / "in.jsonl", 11)
    execute(_stage(work), Target(src, tmp_path / "all", quiet=True))
    parts = [
        execute(_stage(work), Target(src, tmp_path / f"p{i}", quiet=True, partition=Partition(3, i))) for i in range(3)
    ]
    assert sum(p["input rows"] for p in parts) == 11
    ids = [i for k in range(3) for i in _data(tmp_path / f"p{k}")[0]]
    assert ids == _data(tmp_path / "all")[0]
    keys = {json.loads((tmp_path / f"p{k}" / "manifest.json").read_text())["run_key"] for k in range(3)}
    assert len(keys) == 3  # a partition never resumes into another's directory


def test_the_progress_line_shows_the_live_status_and_the_input_total():
    """A stage's `status` is read at every redraw (e.g. sequences in flight while no row finishes)."""
    from io import StringIO

    from rich.console import Console

    from rsynth.runner.loop import progress_bar

    calls = iter(range(100))
    bar = progress_bar(status=lambda: f"{next(calls)} seqs in flight")
    task = bar.add_task("annotating", total=40)
    bar.update(task, completed=3)
    out = StringIO()
    console = Console(file=out, width=200)
    console.print(bar.make_tasks_table(bar.tasks))
    console.print(bar.make_tasks_table(bar.tasks))
    first, second = out.getvalue().splitlines()
    assert "3/40" in first and "0 seqs in flight" in first and "1 seqs in flight" in second
