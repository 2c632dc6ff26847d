"""Child process for the kill -9 tests: writes deterministic rows through `ShardSetWriter`, resuming.

Usage: python shard_writer_child.py OUT N_INPUTS SHARD_SIZE [stop_after_row | midwrite:K]
Each input i emits rows to `data` (two rows), and every fifth input also one `errors` row, so full
shards land in the middle of an input's rows and the manifest's `partial` counts matter.
`stop_after_row` prints READY after that many adds and sleeps (killed in the middle of a shard's
buffer); `midwrite:K` makes the K-th shard write stop halfway through its bytes and sleep (killed with
a half-written temporary file on disk).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import rsynth.data.shards as shards
from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA


def rows_for(i: int) -> list[tuple[str, dict]]:
    rows = [
        (
            "data",
            {
                "id": f"t{i}-{j}",
                "problem_id": f"p{i}",
                "completion": "x" * (i % 7) + str(j),
                "steps": [f"s{i}", f"{j}"],
                "num_tokens": i * 10 + j,
                "pass_rate": i / 100,
            },
        )
        for j in range(2)
    ]
    if i % 5 == 0:
        rows.append(("errors", {"source": "in.jsonl", "row": i + 1, "field": None, "reason": f"bad {i}", "raw": "{"}))
    return rows


def main() -> None:
    out, n, shard_size = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else ""
    if mode.startswith("midwrite:"):
        target = int(mode.split(":")[1])
        real = shards.atomic_write_bytes
        count = {"n": 0}

        def half_then_hang(path: Path, data: bytes) -> None:
            if path.suffix == ".arrow":
                count["n"] += 1
                if count["n"] == target:
                    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    with open(tmp, "wb") as fh:
                        fh.write(data[: len(data) // 2])
                        fh.flush()
                    print("READY", flush=True)
                    time.sleep(600)
            real(path, data)

        shards.atomic_write_bytes = half_then_hang
    stop_after = int(mode) if mode.isdigit() else None
    w = shards.ShardSetWriter(
        out, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="t", run_key="k", shard_size=shard_size
    )
    added = 0
    for i in range(w.cursor, n):
        for split, row in rows_for(i):
            w.add(split, row, i)
            added += 1
            if stop_after is not None and added == stop_after:
                print("READY", flush=True)
                time.sleep(600)
        w.input_done(i)
    w.close({"inputs": n})
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
