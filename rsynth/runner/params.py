"""The run parameters every stage command shares, declared once (`rsynth.config.param` fields).

`--shard-size` and `--limit` are recipe keys too; the others reach recipes another way (`build
--quiet`, `--from` instead of `--overwrite`, `--executor ray` blocks instead of job-array partitions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsynth.config import param
from rsynth.errors import UserError
from rsynth.runner.partition import Partition, make_partition
from rsynth.runner.stage import Target


@dataclass
class RunParams:
    shard_size: int = param(1000, "--shard-size", "Rows per Arrow shard.")
    overwrite: bool = param(
        False,
        "--overwrite",
        "Replace an output directory holding a different run.",
        recipe="build --from STAGE re-runs a stage into a cleared directory",
    )
    limit: int | None = param(None, "--limit", "Process only the first N input rows.")
    num_shards: int = param(
        1,
        "--num-shards",
        "Split the input into N contiguous partitions (job arrays); join outputs with `rsynth merge`.",
        aliases=("--num-partitions",),
        recipe="build --executor ray --ray-blocks N",
    )
    shard_index: int = param(
        0,
        "--shard-index",
        "Which partition this job processes, 0..N-1 (e.g. $SLURM_ARRAY_TASK_ID).",
        aliases=("--partition-index",),
        recipe="build --executor ray (one block per actor)",
    )
    quiet: bool = param(False, "--quiet", "No progress bars.", aliases=("-q",), recipe="build --quiet")
    partition: Partition | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.shard_size < 1 or (self.limit is not None and self.limit < 0):
            raise UserError("--shard-size must be >= 1 and --limit >= 0")
        self.partition = make_partition(self.num_shards, self.shard_index)

    def target(self, input: str, out: Path) -> Target:
        return Target(input, Path(out), self.shard_size, self.overwrite, self.limit, self.quiet, self.partition)

    def stage_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every `run_*` pipeline function takes."""
        return {
            "shard_size": self.shard_size,
            "overwrite": self.overwrite,
            "limit": self.limit,
            "quiet": self.quiet,
            "partition": self.partition,
        }
