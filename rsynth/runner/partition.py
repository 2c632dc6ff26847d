"""Deterministic input partitions for job arrays (Slurm, Kubernetes) and Ray blocks, and their inverse.

"Partition" is a slice of a stage's *input*; "shard" is only ever an Arrow *output* file
(`rsynth.data.shards`). The command line keeps the names Slurm users know: `--num-shards N
--shard-index I` select partition I of N (`--num-partitions/--partition-index` are aliases).

Partition I of N takes the contiguous range ``[I*T//N, (I+1)*T//N)`` of the stage's T input rows (T
is counted after ``--limit``). Contiguous ranges rather than ``index % N``: every partition's output
is then a contiguous slice of the unpartitioned output, so ``rsynth merge`` is a concatenation in
partition order and needs no per-row input index. T comes from the file metadata where the format has
it (Parquet, Arrow), else from one counting pass, which is cheap next to sampling.

Partitioned output equals the whole run's row for row when the engine seeds each prompt from its own
content: vllm and openai always do; the hf engine seeds each micro-batch, so it does when
``--batch-rows`` is at most the samples per prompt (one prompt per micro-batch).

Each partition records its place in ``OUT/partition.json``; ``merge_outputs`` checks the set is
complete (every index of one N, same stage, every partition finished) before joining.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from rsynth.errors import UserError

T = TypeVar("T")
PARTITION = "partition.json"


@dataclass(frozen=True)
class Partition:
    """Input partition `index` of `count` (the `--shard-index` of `--num-shards`)."""

    count: int
    index: int

    def bounds(self, total: int) -> tuple[int, int]:
        return self.index * total // self.count, (self.index + 1) * total // self.count

    @property
    def tag(self) -> str:
        return f"{self.index}/{self.count}"


def make_partition(count: int, index: int) -> Partition | None:
    """The partition named by ``--num-shards/--shard-index``; None for a whole-input run."""
    if count < 1 or not 0 <= index < count:
        raise UserError(
            f"--shard-index {index} --num-shards {count}: expected 0 <= index < num-shards and num-shards >= 1"
        )
    return None if count == 1 else Partition(count, index)


def keyed(input: str, partition: Partition | None) -> str:
    """The input as a run key sees it: a partition's output must never resume into another's.

    The `#shard=` tag is kept from before the rename so that existing outputs keep their run keys."""
    return input if partition is None else f"{input}#shard={partition.tag}"


def take(rows: Iterable[T], partition: Partition | None, total: int, out: Path | str) -> Iterator[T]:
    """This partition's slice of ``rows`` (``total`` long), recording the slice in ``OUT/partition.json``."""
    if partition is None:
        yield from rows
        return
    start, stop = partition.bounds(total)
    Path(out).mkdir(parents=True, exist_ok=True)
    from rsynth.data.shards import atomic_write_json

    atomic_write_json(
        Path(out) / PARTITION,
        {"num_shards": partition.count, "shard_index": partition.index, "start": start, "stop": stop, "total": total},
    )
    yield from islice(rows, start, stop)


def partition_records(spec: str, partition: Partition | None, limit: int | None, out: Path | str) -> Iterator[Any]:
    """The input records of ``spec`` that belong to ``partition`` (all of them when None)."""
    from rsynth.data.readers import Records, count_records, read_records

    if partition is None:
        return read_records(spec)
    total = count_records(spec)
    if total is None:  # one counting pass, without decoding anything downstream
        total = sum(1 for _ in islice(read_records(spec), limit))
    elif limit is not None:
        total = min(total, limit)
    start, stop = partition.bounds(total)
    return Records(take(read_records(spec), partition, total, out), lambda: stop - start)


def merge_outputs(dirs: list[Path], out: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Join the partition outputs of one stage into ``out``, in original input order."""
    from rsynth.data.shards import MANIFEST, ShardSetWriter, main_split, read_arrow

    parts = sorted(((_partition_of(d), d) for d in dirs), key=lambda part: part[0]["shard_index"])
    manifests = [json.loads((d / MANIFEST).read_text()) for _, d in parts]
    sizes = {p["num_shards"] for p, _ in parts}
    if len(sizes) != 1:
        raise UserError(f"merge: partitions of different --num-shards ({', '.join(map(str, sorted(sizes)))})")
    n = sizes.pop()
    have = [p["shard_index"] for p, _ in parts]
    if have != list(range(n)):
        missing = sorted(set(range(n)) - set(have)) or sorted({i for i in have if have.count(i) > 1})
        raise UserError(
            f"merge: expected partitions 0..{n - 1} exactly once; missing or repeated: {', '.join(map(str, missing))}"
        )
    stages = {m["stage"] for m in manifests}
    if len(stages) != 1:
        raise UserError(f"merge: partitions of different stages ({', '.join(sorted(stages))})")
    unfinished = [str(d) for m, (_, d) in zip(manifests, parts) if not m.get("complete")]
    if unfinished:
        raise UserError(f"merge: {unfinished[0]} is not finished; re-run that partition first")
    split_names = list(dict.fromkeys(s for m in manifests for s in m["splits"]))
    schemas = {}
    for split in split_names:
        files = [
            d / s["file"] for m, (_, d) in zip(manifests, parts) for s in m["splits"].get(split, {}).get("shards", [])
        ]
        schemas[split] = read_arrow(files[0]).schema if files else None
    key = hashlib.sha256(json.dumps([m["run_key"] for m in manifests]).encode()).hexdigest()[:16]
    primary = main_split(manifests[0])
    writer = ShardSetWriter(
        out,
        {s: sc for s, sc in schemas.items() if sc is not None},
        stage=manifests[0]["stage"],
        run_key=f"merge:{key}",
        shard_size=manifests[0].get("shard_size", 1000),
        primary=primary,
        overwrite=overwrite,
    )
    position = 0
    for m, (_, d) in zip(manifests, parts):
        for split in writer.splits:
            for shard in m["splits"].get(split, {}).get("shards", []):
                for row in read_arrow(d / shard["file"]).to_pylist():
                    writer.add(split, row, position)
        position += 1
        writer.input_done(position - 1)
    stats = _summed_stats(manifests)
    stats["merged shards"] = n
    writer.close(stats)
    return {**{f"{s} rows": writer.rows(s) for s in writer.splits}, "shards": n}


def _partition_of(d: Path) -> dict[str, Any]:
    path = d / PARTITION
    if not path.exists():
        raise UserError(
            f"merge: {d} is not a partition output (no {PARTITION}; run the stage with --num-shards/--shard-index)"
        )
    return json.loads(path.read_text())


def _summed_stats(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts add up across shards; rates and other non-additive values are not carried over."""
    total: dict[str, Any] = {}
    for m in manifests:
        for key, value in m.get("stats", {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    return total
