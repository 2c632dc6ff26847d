"""`rsynth build RECIPE`: run a recipe's stages, skipping finished ones and resuming interrupted ones."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from rsynth.cli.common import console, summary_table


def build(
    recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/demo.yaml)."),
    sets: list[str] = typer.Option(
        [], "--set", help="Override a recipe key: stages.ID.KEY=VALUE, defaults.KEY=VALUE or out=DIR (repeatable)."
    ),
    start: Optional[str] = typer.Option(
        None, "--from", help="Re-run from this stage on; earlier stages must have finished."
    ),
    until: Optional[str] = typer.Option(None, "--until", help="Stop after this stage."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate the recipe and print which stages run or skip, and why."
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="local | ray: where stages run (ray: shardable stages as Ray Data over input blocks).",
    ),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray cluster address (e.g. auto); default: start a local Ray."
    ),
    ray_blocks: int = typer.Option(4, "--ray-blocks", help="Input blocks per stage under --executor ray."),
    ray_replicas: int = typer.Option(
        1, "--ray-replicas", help="Actors (engine replicas) per stage under --executor ray."
    ),
    ray_gpus: float = typer.Option(
        0.0, "--ray-gpus-per-replica", help="GPUs per actor (1 on a GPU cluster: one engine per GPU)."
    ),
    ray_cpus: Optional[int] = typer.Option(None, "--ray-num-cpus", help="CPUs for a local Ray (default: all)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run a recipe: stages chained with their parameters; finished stages are skipped, an interrupted one resumes."""
    from rsynth.recipes.builder import plan, run_recipe
    from rsynth.recipes.executors import executor_named
    from rsynth.recipes.recipe import load_recipe

    runner = executor_named(
        executor,
        blocks=ray_blocks,
        replicas=ray_replicas,
        gpus_per_replica=ray_gpus,
        address=ray_address,
        num_cpus=ray_cpus,
    )
    parsed = load_recipe(recipe, sets)
    steps = plan(parsed, start, until)
    console.print(_plan_table(parsed, steps))
    if dry_run:
        return

    def report(step, stats) -> None:
        console.print(summary_table(f"{step.stage.id} ({step.stage.kind.name})", stats))

    run_recipe(parsed, steps, quiet=quiet, executor=runner, on_stage=report)
    last = next((s for s in reversed(parsed.stages) if s.kind.name == "annotate-prm"), parsed.stages[-1])
    labels_dir = Path(parsed.out) / last.id
    if last.kind.name == "annotate-prm" and (labels_dir / "manifest.json").exists():  # absent under --until
        from rsynth.stages.label_summary import label_summary

        console.print(summary_table(f"labels ({last.id})", label_summary(labels_dir)))
    console.print(f"build finished: {parsed.out}/ (one directory per stage, build.json records what ran)")
    console.print(
        f"load it: datasets.load_dataset('arrow', data_files='{parsed.out}/{last.id}/data/*.arrow', split='train')"
    )


def _plan_table(recipe, steps) -> Table:
    table = Table(title=f"plan: {recipe.path} -> {recipe.out}/", header_style="bold")
    for col in ("stage", "kind", "action", "why"):
        table.add_column(col)
    colour = {"run": "green", "rerun": "yellow", "resume": "cyan", "skip": "dim"}
    for st in steps:
        c = colour.get(st.action, "dim")
        table.add_row(st.stage.id, st.stage.kind.name, f"[{c}]{st.action}[/{c}]", st.reason)
    return table
