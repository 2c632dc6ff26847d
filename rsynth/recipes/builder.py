"""Plan and run a recipe: skip finished stages, resume an interrupted one, re-run changed ones.

Each stage's identity is a content hash of its kind, its parameters and the hashes of what it reads
(an earlier stage's hash, or a fingerprint of an external source), so changing one stage re-runs it
and everything downstream of it, and nothing else. `OUT/build.json` records, per stage, the hash it
was started with and whether it finished:

- same hash, finished           -> skip
- same hash, not finished       -> resume (the stage pipeline resumes from its manifest and cache)
- other hash, or forced (--from) -> re-run into a cleared output directory
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rsynth.data.shards import atomic_write_json, claim_build_root
from rsynth.errors import UserError
from rsynth.recipes.adapters import StageContext, make_engine
from rsynth.recipes.executors import Executor, as_executor
from rsynth.recipes.recipe import Recipe, StageDef

__all__ = ["make_engine", "plan", "run_recipe"]  # make_engine: bench scripts import it from here

RECORD = "build.json"
VERSIONED = ("rsynth", "pyarrow", "datasets", "torch", "transformers", "vllm", "math-verify", "ray")


@dataclass
class Step:
    stage: StageDef
    action: str  # run | resume | rerun | skip | keep | after --until
    reason: str
    hash: str

    @property
    def runs(self) -> bool:
        return self.action in ("run", "resume", "rerun")


def stage_dir(recipe: Recipe, stage: StageDef) -> Path:
    return recipe.out / stage.id


def stage_input(recipe: Recipe, stage: StageDef) -> str | None:
    """What the stage reads: an earlier stage's output (its `output_subdir`) or the external source."""
    if stage.input is not None:
        upstream = recipe.stage(stage.input)
        path = stage_dir(recipe, upstream)
        return str(path / upstream.kind.output_subdir if upstream.kind.output_subdir else path)
    return stage.params.get("source")


def _source_fingerprint(spec: str | None) -> Any:
    """A local source's size and mtime (a changed file re-runs the stage); a hub id stands for itself."""
    if spec is None or not Path(spec).exists():
        return spec
    p = Path(spec)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    return [
        spec,
        [(str(f.relative_to(p)) if f != p else f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files],
    ]


def _unhashed(stage: StageDef, key: str, value: Any) -> bool:
    """A key added to a stage kind later, left at its default, keeps older builds' hashes (and so
    their finished stages) as they were; client settings (`CLIENT_KEYS`) never count."""
    from rsynth.engines.params import CLIENT_KEYS

    spec = stage.kind.fields.get(key)
    return spec is not None and (key in CLIENT_KEYS or (not spec.hashed_at_default and value == spec.default))


def stage_hashes(recipe: Recipe) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for s in recipe.stages:
        upstream = [hashes[s.input]] if s.input else [] if s.kind.reads_input else list(hashes.values())
        params = {k: v for k, v in s.params.items() if k != "id" and not _unhashed(s, k, v)}
        payload = [
            s.kind.name,
            params,
            upstream,
            _source_fingerprint(s.params.get("source")) if s.input is None else None,
        ]
        hashes[s.id] = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return hashes


def read_record(recipe: Recipe) -> dict[str, Any]:
    path = recipe.out / RECORD
    return json.loads(path.read_text()) if path.exists() else {"stages": {}}


def plan(recipe: Recipe, start: str | None = None, until: str | None = None) -> list[Step]:
    """Decide, for every stage, whether it runs, resumes, re-runs or is skipped, and why."""
    ids = [s.id for s in recipe.stages]
    for flag, name in (("--from", start), ("--until", until)):
        if name is not None and name not in ids:
            from rsynth.recipes.recipe import _suggest

            raise UserError(f"{flag} {name}: no such stage{_suggest(name, ids)} (stages: {', '.join(ids)})")
    first = ids.index(start) if start else 0
    last = ids.index(until) if until else len(ids) - 1
    if first > last:
        raise UserError(f"--from {start} comes after --until {until}")
    record = read_record(recipe)["stages"]
    hashes = stage_hashes(recipe)
    steps = []
    for i, s in enumerate(recipe.stages):
        h, rec = hashes[s.id], record.get(s.id)
        if i < first:
            steps.append(Step(s, "keep", "before --from: its output is used as it is", h))
        elif i > last:
            steps.append(Step(s, "after --until", "not run", h))
        elif start is not None:
            steps.append(Step(s, "rerun", f"--from {start}", h))
        elif rec is None:
            steps.append(Step(s, "run", "not built yet", h))
        elif rec["hash"] != h:
            steps.append(Step(s, "rerun", "its parameters or inputs changed", h))
        elif not rec.get("complete"):
            steps.append(Step(s, "resume", "interrupted: continues from its manifest and completion cache", h))
        else:
            steps.append(_checked_skip(recipe, s, h))
    return steps


def _checked_skip(recipe: Recipe, s: StageDef, h: str) -> Step:
    """A finished stage is skipped only if its output is intact: a damaged shard resumes it (the
    writer redoes the damaged part, sampled rows from its cache), a damaged manifest re-runs it
    over its kept cache."""
    from rsynth.data.shards import output_damage

    damage = output_damage(stage_dir(recipe, s))
    if damage is None:
        return Step(s, "skip", "finished with the same parameters and inputs", h)
    kind, line = damage
    return Step(s, "resume" if kind == "shard" else "rerun", f"{line}: redone from its completion cache", h)


def _versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _save(recipe: Recipe, record: dict[str, Any]) -> None:
    recipe.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(recipe.out / RECORD, record)


def run_recipe(
    recipe: Recipe,
    steps: list[Step],
    *,
    quiet: bool = False,
    executor: Executor | str = "local",
    on_stage=None,
) -> dict[str, Any]:
    """Run the steps that run, each on `executor` (an object, or its name with its defaults); returns
    the updated build record. `on_stage(step, stats)` reports progress.

    The build root is claimed first: one build at a time, and never a single command's output."""
    executor = as_executor(executor)
    claim_build_root(recipe.out)
    record = read_record(recipe)
    record.update(
        {
            "recipe": str(recipe.path),
            "recipe_text": recipe.text,
            "name": recipe.name,
            "license": recipe.license,
            "description": recipe.description,
            "versions": _versions(),
        }
    )
    record["stage_order"] = [s.id for s in recipe.stages]
    for step in steps:
        s = step.stage
        rec = record["stages"].get(s.id)
        if step.action == "keep" and not (rec and rec.get("complete")):
            raise UserError(f"--from: stage {s.id!r} before it has not finished; run the recipe without --from first")
        if not step.runs:
            continue
        record["stages"][s.id] = {
            "kind": s.kind.name,
            "hash": step.hash,
            "complete": False,
            "dir": s.id,
            "input": s.input,
            "source": s.params.get("source"),
            "params": s.params,
        }
        _save(recipe, record)
        t0 = time.perf_counter()
        stats = executor.run(s.kind, _context(recipe, step, quiet))
        record["stages"][s.id].update(complete=True, stats=stats, seconds=round(time.perf_counter() - t0, 2))
        _save(recipe, record)
        if on_stage is not None:
            on_stage(step, stats)
    return record


def _context(recipe: Recipe, step: Step, quiet: bool) -> StageContext:
    """What the stage's adapter needs: its keys, what it reads, where it writes, whether it starts over."""
    s = step.stage
    return StageContext(
        stage_id=s.id,
        params=s.params,
        input=stage_input(recipe, s),
        out=stage_dir(recipe, s),
        overwrite=step.action == "rerun",
        quiet=quiet,
        build_root=recipe.out,
    )
