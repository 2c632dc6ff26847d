"""The runner's reorder buffer: inputs finished in any order are written in input order."""

from __future__ import annotations

from pathlib import Path

from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA
from rsynth.data.shards import ShardSetWriter, read_split
from rsynth.runner.loop import ReorderBuffer


def test_reorder_buffer_writes_in_input_order(tmp_path: Path) -> None:
    writer = ShardSetWriter(
        tmp_path, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="t", run_key="k", shard_size=2
    )
    buf = ReorderBuffer(writer, start=0)
    buf.put(2, [("data", {"id": "2"})])
    buf.put(1, [])  # an input without rows still unblocks the ones after it
    assert buf.pending == 2 and buf.next == 0
    buf.put(0, [("data", {"id": "0a"}), ("data", {"id": "0b"})])
    assert buf.pending == 0 and buf.next == 3
    buf.put(1, [("data", {"id": "again"})])  # already written: dropped
    buf.put(4, [("data", {"id": "4"})])
    assert buf.pending == 1
    buf.put(3, [("data", {"id": "3"})])
    writer.close({})
    assert [r["id"] for r in read_split(tmp_path, "data").to_pylist()] == ["0a", "0b", "2", "3", "4"]
    assert writer.cursor == 5
