"""Executors: where a recipe stage's partitions run (this process, or a Ray cluster), as objects.

Three parts, each with one job (datatrove's split between pipeline steps and executors):
- the stage's `Work` only turns validated items into rows;
- the runner (`rsynth.runner.stage.execute`) runs ONE partition of a stage's input: run key, resume,
  "already complete", the input's identity, the manifest;
- an executor decides how many partitions there are, where each one runs, and how their outputs
  become the stage's output. `LocalExecutor`: one run here (of the partition the context names, if
  any). `RayExecutor`: `blocks` partitions on an actor pool, merged afterwards
  (`rsynth.recipes.ray_executor`).

The builder (`rsynth build`, `rsynth.api.build`) and the Python API's single stages call
`executor.run(kind, ctx)`; `--executor NAME` picks one from `EXECUTORS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from rsynth.errors import UserError
from rsynth.recipes.adapters import StageContext, StageKind, make_engine


class Executor(ABC):
    """Runs one recipe stage over its input and returns its stats (the manifest's `stats`)."""

    name: ClassVar[str]

    def run(self, kind: StageKind, ctx: StageContext) -> dict[str, Any]:
        """Check the input once (one-line error for a missing file or hub id), then run the stage."""
        if ctx.input is not None:
            from rsynth.data.readers import check_input

            check_input(ctx.input)
        return self.run_checked(kind, ctx)

    @abstractmethod
    def run_checked(self, kind: StageKind, ctx: StageContext) -> dict[str, Any]:
        """Run the stage whose input is known to exist."""


@dataclass(frozen=True)
class LocalExecutor(Executor):
    """The stage in this process: one engine for the stage (unless the context brings one, which the
    caller then closes), then the stage's adapter, which calls `execute`."""

    name: ClassVar[str] = "local"

    def run_checked(self, kind: StageKind, ctx: StageContext) -> dict[str, Any]:
        owned = None
        if kind.uses_engine and ctx.engine is None:
            ctx.engine = owned = make_engine(ctx.params, ctx.out / "cache.sqlite")
        try:
            return kind.run(ctx)
        finally:
            if owned is not None:
                owned.close()
                ctx.engine = None


@dataclass(frozen=True)
class RayExecutor(Executor):
    """A shardable stage as Ray Data over `blocks` input partitions on `replicas` actors (one engine
    per actor, `gpus_per_replica` GPUs each), merged into the stage's output; a stage that cannot be
    partitioned (a global step such as export) runs locally."""

    name: ClassVar[str] = "ray"
    blocks: int = 4
    replicas: int = 1
    gpus_per_replica: float = 0.0
    address: str | None = None
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.blocks < 1 or self.replicas < 1:
            raise UserError("--ray-blocks and --ray-replicas must be >= 1")

    def run_checked(self, kind: StageKind, ctx: StageContext) -> dict[str, Any]:
        if not kind.shardable:
            return LocalExecutor().run_checked(kind, ctx)
        from rsynth.recipes.ray_executor import run_on_ray

        return run_on_ray(kind, ctx, **{f.name: getattr(self, f.name) for f in fields(self)})


EXECUTORS: dict[str, type[Executor]] = {cls.name: cls for cls in (LocalExecutor, RayExecutor)}


def executor_named(name: str, **options: Any) -> Executor:
    """The executor `--executor NAME` stands for, given the options it takes (others are ignored:
    `--ray-blocks` means nothing to the local executor)."""
    cls = EXECUTORS.get(name)
    if cls is None:
        raise UserError(f"--executor {name!r}: expected one of {', '.join(EXECUTORS)}")
    own = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in options.items() if k in own})


def as_executor(executor: Executor | str) -> Executor:
    """An executor object as is; a name (`"local"`, `"ray"`) with its defaults."""
    return executor if isinstance(executor, Executor) else executor_named(executor)
