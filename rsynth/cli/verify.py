"""`rsynth verify math|code|lean`: one verdict row per input row, malformed rows to `errors`."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from rsynth.cli import options as opt
from rsynth.cli.common import console, summary_table
from rsynth.cli.params import with_configs
from rsynth.errors import UserError
from rsynth.executor.partition import make_partition
from rsynth.pipelines.verify import run_verify
from rsynth.verifiers.lean_params import LeanParams

app = typer.Typer(help="Check answers, programs and proofs: one verdict per input row.", no_args_is_help=True)

FieldOpt = typer.Option([], "--field", help="NAME=COLUMN: read canonical field NAME from input column COLUMN.")
InputOpt = typer.Option(..., "--input", "-i", help="JSONL/JSON/Parquet/Arrow file or dataset directory.")
OutOpt = typer.Option(..., "--out", "-o", help="Output directory (Arrow shards + manifest).")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace a different run's output in --out.")
BatchOpt = typer.Option(256, "--batch-size", help="Rows per verifier batch (also the checkpoint interval).")


def _report(kind: str, out: Path, counts: Counter[str], seconds: float) -> None:
    rows = {name: counts[name] for name in sorted(counts)}
    rows["total rows"] = sum(counts.values())
    rows["seconds"] = round(seconds, 2)
    console.print(summary_table(f"rsynth verify {kind} -> {out}", rows))


@app.command("math")
def verify_math(
    input: str = InputOpt,
    out: Path = OutOpt,
    field: list[str] = FieldOpt,
    timeout: float = typer.Option(5.0, help="Hard per-item limit in seconds (worker killed past it)."),
    workers: int = typer.Option(1, help="Worker processes."),
    batch_size: int = BatchOpt,
    overwrite: bool = OverwriteOpt,
    num_shards: int = opt.NUM_SHARDS,
    shard_index: int = opt.SHARD_INDEX,
) -> None:
    """Final-answer equivalence: correct | incorrect | unparseable | timeout. Fields: gold, pred, id."""
    start = time.monotonic()
    counts = run_verify("math", input, out, field, {"timeout": timeout, "workers": workers}, batch_size=batch_size, overwrite=overwrite,
                        partition=make_partition(num_shards, shard_index))
    _report("math", out, counts, time.monotonic() - start)


@app.command("code")
def verify_code(
    input: str = InputOpt,
    out: Path = OutOpt,
    field: list[str] = FieldOpt,
    style: str = typer.Option("assert", help="Test style: assert (asserts or HumanEval check), io (JSON inputs/outputs), stdio (JSON), evalplus (MBPP+ rows: base + plus inputs)."),
    timeout: float = typer.Option(10.0, help="Wall-clock and CPU limit per program run, seconds."),
    workers: int = typer.Option(1, help="Sandboxed runs in flight."),
    memory_mb: int = typer.Option(1024, help="Address-space limit per run."),
    sandbox: str = typer.Option("auto", "--sandbox", "--backend", help="Sandbox: auto (bwrap, else unshare; refuses when neither works), bwrap, unshare, or unsafe-rlimit (no isolation, at your own risk)."),
    batch_size: int = BatchOpt,
    overwrite: bool = OverwriteOpt,
    num_shards: int = opt.NUM_SHARDS,
    shard_index: int = opt.SHARD_INDEX,
) -> None:
    """Run programs against tests in the sandbox: pass | fail | timeout | error. Fields: code, tests, entry_point, id."""
    if style not in ("assert", "io", "stdio", "evalplus"):
        raise UserError(f"--style {style!r}: expected assert, io, stdio or evalplus")
    start = time.monotonic()
    options = {"timeout": timeout, "workers": workers, "memory_mb": memory_mb, "sandbox": sandbox}
    counts = run_verify("code", input, out, field, options, style=style, batch_size=batch_size, overwrite=overwrite,
                        partition=make_partition(num_shards, shard_index))
    _report("code", out, counts, time.monotonic() - start)


@app.command("lean")
@with_configs(lean=LeanParams)
def verify_lean(
    input: str = InputOpt,
    out: Path = OutOpt,
    field: list[str] = FieldOpt,
    lean: LeanParams = LeanParams(),
    old_command: Optional[str] = typer.Option(None, "--lean-command", hidden=True, help="Old name of --lean-cmd."),  # before the names were unified
    old_cwd: Optional[str] = typer.Option(None, "--cwd", hidden=True, help="Old name of --lean-cwd."),
    old_timeout: Optional[float] = typer.Option(None, "--timeout", hidden=True, help="Old name of --lean-timeout."),
    batch_size: int = typer.Option(1000, "--batch-size", help="Proofs per Lean process."),
    overwrite: bool = OverwriteOpt,
    num_shards: int = opt.NUM_SHARDS,
    shard_index: int = opt.SHARD_INDEX,
) -> None:
    """Check theorem+proof text: proved | error | sorry | timeout. Fields: proof, statement, id."""
    start = time.monotonic()
    lean = replace(lean, lean_cmd=lean.lean_cmd or old_command, lean_cwd=lean.lean_cwd or old_cwd,
                   lean_timeout=lean.lean_timeout if old_timeout is None else old_timeout)
    options = lean.verifier_options()
    counts = run_verify("lean", input, out, field, options, batch_size=batch_size, overwrite=overwrite,
                        partition=make_partition(num_shards, shard_index))
    _report("lean", out, counts, time.monotonic() - start)
