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
from rsynth.runner.params import RunParams
from rsynth.stages.verify import VerifyCodeParams, VerifyLeanParams, VerifyMathParams, run_verify
from rsynth.verifiers.lean_params import LeanParams

app = typer.Typer(help="Check answers, programs and proofs: one verdict per input row.", no_args_is_help=True)

FieldOpt = typer.Option([], "--field", help="NAME=COLUMN: read canonical field NAME from input column COLUMN.")
InputOpt = opt.INPUT("JSONL/JSON/Parquet/Arrow file or dataset directory.")
OutOpt = typer.Option(..., "--out", "-o", help="Output directory (Arrow shards + manifest).")


def _report(kind: str, out: Path, counts: Counter[str], seconds: float) -> None:
    rows = {name: counts[name] for name in sorted(counts)}
    rows["total rows"] = sum(counts.values())
    rows["seconds"] = round(seconds, 2)
    console.print(summary_table(f"rsynth verify {kind} -> {out}", rows))


def _run(kind: str, input: str, out: Path, field: list[str], options: dict, run: RunParams, **kwargs) -> None:
    start = time.monotonic()
    counts = run_verify(
        kind,
        input,
        out,
        field,
        options,
        overwrite=run.overwrite,
        partition=run.partition,
        limit=run.limit,
        quiet=run.quiet,
        shard_size=run.shard_size,
        **kwargs,
    )
    _report(kind, out, counts, time.monotonic() - start)


@app.command("math")
@with_configs(params=VerifyMathParams, run=RunParams)
def verify_math(
    input: str = InputOpt,
    out: Path = OutOpt,
    field: list[str] = FieldOpt,
    params: VerifyMathParams = VerifyMathParams(),
    run: RunParams = RunParams(),
) -> None:
    """Final-answer equivalence: correct | incorrect | unparseable | timeout. Fields: gold, pred, id."""
    _run("math", input, out, field, params.options(), run, batch_size=params.batch_size)


@app.command("code")
@with_configs(params=VerifyCodeParams, run=RunParams)
def verify_code(
    input: str = InputOpt,
    out: Path = OutOpt,
    field: list[str] = FieldOpt,
    params: VerifyCodeParams = VerifyCodeParams(),
    run: RunParams = RunParams(),
) -> None:
    """Run programs against tests in the sandbox: pass | fail | timeout | error. Fields: code, tests, entry_point, id."""
    _run("code", input, out, field, params.options(), run, style=params.style, batch_size=params.batch_size)


@app.command("lean")
@with_configs(params=VerifyLeanParams, lean=LeanParams, run=RunParams)
def verify_lean(
    input: str = InputOpt,
    out: Path = OutOpt,
    field: list[str] = FieldOpt,
    lean: LeanParams = LeanParams(),
    old_command: Optional[str] = typer.Option(
        None, "--lean-command", hidden=True, help="Old name of --lean-cmd."
    ),  # before the names were unified
    old_cwd: Optional[str] = typer.Option(None, "--cwd", hidden=True, help="Old name of --lean-cwd."),
    old_timeout: Optional[float] = typer.Option(None, "--timeout", hidden=True, help="Old name of --lean-timeout."),
    params: VerifyLeanParams = VerifyLeanParams(),
    run: RunParams = RunParams(),
) -> None:
    """Check theorem+proof text: proved | error | sorry | timeout. Fields: proof, statement, id."""
    lean = replace(
        lean,
        lean_cmd=lean.lean_cmd or old_command,
        lean_cwd=lean.lean_cwd or old_cwd,
        lean_timeout=lean.lean_timeout if old_timeout is None else old_timeout,
    )
    _run("lean", input, out, field, lean.verifier_options(), run, batch_size=params.batch_size)
