"""Child process for the signal tests: the real stage loop (`run_stage`) and writer behind the real
`run_cli`, with hooks that stop at a chosen point so a test's signal lands there deterministically.

Usage: python interrupt_child.py OUT N_INPUTS SHARD_SIZE [MODE]
MODE: `between:K` prints READY after input K was processed and sleeps (a signal between commits);
`commit:K` prints READY inside the K-th shard commit, just after the shard file was renamed into
place, and stays there 2 s (a signal inside the commit); `manifest:K` does the same just before
the K-th manifest write. Rows come from `shard_writer_child.rows_for`, so output can be compared
with an uninterrupted writer's.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

import rsynth.data.shards as shards
from rsynth.cli.common import run_cli
from rsynth.data.readers import Record
from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA
from rsynth.runner.loop import run_stage
from tests.shard_writer_child import rows_for

app = typer.Typer()


def _stop_inside(name: str, target: int) -> None:
    """Wrap `shards.<name>` so its `target`-th call (on a shard or the manifest) pauses after (shards)
    or before (manifest) the real write, inside `checkpoint`."""
    real = getattr(shards, name)
    count = {"n": 0}

    def hooked(path: Path, *args):
        result = real(path, *args) if name == "write_arrow" else None  # write_arrow returns the shard's size and hash
        count["n"] += 1
        if count["n"] == target:
            print("READY", flush=True)
            time.sleep(2.0)
        return result if name == "write_arrow" else real(path, *args)

    setattr(shards, name, hooked)


@app.command()
def main(out: Path, n: int, shard_size: int, mode: str = typer.Argument("")) -> None:
    kind, _, arg = mode.partition(":")
    if kind == "commit":
        _stop_inside("write_arrow", int(arg))
    elif kind == "manifest":
        _stop_inside("atomic_write_json", int(arg))
    writer = shards.ShardSetWriter(
        out, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="t", run_key="k", shard_size=shard_size
    )

    def process(items):
        rows = {it.index: rows_for(it.index) for it in items}
        if kind == "between" and items[-1].index == int(arg):
            print("READY", flush=True)
            time.sleep(60)
        return rows

    records = (Record("in.jsonl", i + 1, {"i": i}) for i in range(n))
    run_stage(records, writer, validate=lambda r: r.data, process=process, batch_size=1, quiet=True)
    writer.close({"inputs": n})
    print("DONE", flush=True)


if __name__ == "__main__":
    run_cli(app)
