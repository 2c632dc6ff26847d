"""`--executor ray`: run one stage as Ray Data over input blocks, then merge the blocks.

The stage's input is split into `blocks` contiguous ranges (the same partition as
`--num-shards/--shard-index`). Ray Data maps the block indices over an actor pool of `replicas`
actors; each actor builds the stage's engine once (with `gpus_per_replica` GPUs: one engine replica
per GPU actor) and runs the ordinary stage pipeline on each block it is given, into
`OUT/.ray/<stage>/block-NNNNN`. Because a block is an ordinary partition output, a killed Ray run
resumes block by block, and the merged result is row for row the local run's (see
`rsynth.runner.partition` for when sampling is partition-independent).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rsynth.data.shards import MANIFEST
from rsynth.recipes.adapters import STAGES, StageContext, StageKind, make_engine
from rsynth.runner.partition import Partition, merge_outputs


def block_dir(ctx: StageContext, index: int) -> Path:
    root = ctx.build_root if ctx.build_root is not None else ctx.out.parent
    return root / ".ray" / ctx.stage_id / f"block-{index:05d}"


class _BlockWorker:
    """A Ray actor: one engine for its lifetime, one stage run per block index it receives."""

    def __init__(self, kind_name: str, ctx: StageContext, blocks: int) -> None:
        self.kind = STAGES[kind_name]
        self.ctx = ctx
        self.blocks = blocks
        self.engine = make_engine(ctx.params, None) if self.kind.uses_engine else None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from rsynth.engines.cache import CachedEngine

        done = []
        for index in batch["block"]:
            out = block_dir(self.ctx, int(index))
            engine = CachedEngine(self.engine, out / "cache.sqlite") if self.engine is not None else None
            ctx = dataclasses.replace(
                self.ctx, out=out, partition=Partition(self.blocks, int(index)), engine=engine, quiet=True
            )
            self.kind.run(ctx)
            done.append(int(index))
        return {"block": done}


def run_on_ray(
    kind: StageKind,
    ctx: StageContext,
    *,
    blocks: int = 4,
    replicas: int = 1,
    gpus_per_replica: float = 0.0,
    address: str | None = None,
    num_cpus: int | None = None,
) -> dict[str, Any]:
    """Run `kind` over `blocks` input blocks on Ray (`address` None starts a local Ray), then merge."""
    from rsynth.errors import UserError, require

    ray = require("ray", feature="--executor ray", extra="ray")
    require("ray.data", feature="--executor ray", extra="ray")
    if not ray.is_initialized():
        ray.init(
            address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True
        )
    from ray.data import ActorPoolStrategy, from_items

    ds = from_items([{"block": i} for i in range(blocks)], override_num_blocks=blocks)
    done = ds.map_batches(
        _BlockWorker,
        fn_constructor_args=(kind.name, ctx, blocks),
        batch_size=1,
        compute=ActorPoolStrategy(size=min(replicas, blocks)),
        num_gpus=gpus_per_replica,
    ).take_all()
    if sorted(d["block"] for d in done) != list(range(blocks)):
        raise UserError(f"ray: stage {ctx.stage_id} finished {len(done)} of {blocks} blocks")
    merge_outputs([block_dir(ctx, i) for i in range(blocks)], ctx.out, overwrite=True)
    return {**json.loads((ctx.out / MANIFEST).read_text())["stats"], "ray blocks": blocks, "ray replicas": replicas}
