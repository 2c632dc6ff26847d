"""`rsynth doctor OUT`: check an output directory the way a user would before publishing it.

A resumed run already repairs what it is about to trust (rsynth.data.shards); this reads everything
without changing anything, so it also covers what no run re-reads: every shard loads with the schema
its manifest names and holds the rows the manifest counts, no stray shard would be picked up by a
glob, the card's `data_files` globs resolve, and each completion cache is a readable database. The
answer is a list of problems, each one line naming the file, what is wrong and the way out.
"""

from __future__ import annotations

import glob
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from rsynth.data.shards import (
    BUILD_RECORD,
    MANIFEST,
    OutputError,
    load_manifest,
    read_arrow,
    schema_columns,
    shard_problem,
)
from rsynth.errors import UserError

CACHE = "cache.sqlite"


@dataclass
class Report:
    """What `doctor` found: problems (one line each) and what it checked."""

    problems: list[str] = field(default_factory=list)
    outputs: int = 0
    shards: int = 0
    rows: int = 0


def doctor(root: Path | str) -> Report:
    """Check a build output (build.json) or one stage's output (manifest.json) under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"doctor: {root} is not a directory")
    report = Report()
    if (root / BUILD_RECORD).exists():
        for d in _build_stage_dirs(root, report):
            _check_stage(d, report)
    elif (root / MANIFEST).exists():
        _check_stage(root, report)
    else:
        raise UserError(f"doctor: {root} is neither a build output ({BUILD_RECORD}) nor a stage output ({MANIFEST})")
    _check_card(root, report)
    return report


def _build_stage_dirs(root: Path, report: Report) -> list[Path]:
    path = root / BUILD_RECORD
    try:
        record = json.loads(path.read_bytes())
        stages = record["stages"]
        dirs = [(sid, root / rec.get("dir", sid), bool(rec.get("complete"))) for sid, rec in stages.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        report.problems.append(
            f"{path}: damaged ({type(exc).__name__}: {exc}); re-run `rsynth build` on the recipe "
            "(stage outputs and their caches are kept)"
        )
        return sorted(p.parent for p in root.glob(f"*/{MANIFEST}"))
    found = []
    for sid, d, complete in dirs:
        if (d / MANIFEST).exists():
            found.append(d)
        elif complete:
            report.problems.append(
                f"{d / MANIFEST}: missing, though {BUILD_RECORD} says stage {sid!r} finished; "
                "re-run `rsynth build` on the recipe to redo it"
            )
    return found


def _check_stage(out: Path, report: Report) -> None:
    report.outputs += 1
    try:
        manifest = load_manifest(out)
    except OutputError as exc:
        report.problems.append(str(exc))
        manifest = None
    if manifest is not None:
        if not manifest.get("complete"):
            report.problems.append(
                f"{out / MANIFEST}: the run is not finished (input rows done: {manifest.get('cursor')}); "
                "re-run the command that wrote it to finish it"
            )
        for name, info in manifest["splits"].items():
            _check_split(out, name, info, report)
    _check_cache(out / CACHE, report)


def _check_split(out: Path, name: str, info: dict[str, Any], report: Report) -> None:
    redo = (
        "re-run the command that wrote it: the damaged shard and those after it are redone "
        "(sampled rows from its cache)"
    )
    listed = {e["file"] for e in info["shards"]}
    if sum(e["rows"] for e in info["shards"]) != info.get("rows"):
        report.problems.append(
            f"{out / MANIFEST}: split {name!r} counts {info.get('rows')} rows but its shards list "
            f"{sum(e['rows'] for e in info['shards'])}; re-run with --overwrite to redo it"
        )
    expected = info.get("schema")
    for entry in info["shards"]:
        path = out / entry["file"]
        report.shards += 1
        problem = shard_problem(out, entry)
        if problem is None:
            try:
                table = read_arrow(path)
            except (pa.ArrowInvalid, OSError) as exc:
                problem = f"unreadable ({str(exc).splitlines()[0]})"
            else:
                if expected is not None and schema_columns(table.schema) != expected:
                    problem = "its schema is not the one the manifest names"
                elif table.num_rows != entry["rows"]:
                    problem = f"{table.num_rows} rows, the manifest counts {entry['rows']}"
                else:
                    report.rows += table.num_rows
        if problem:
            report.problems.append(f"{path}: {problem}; {redo}")
    for stray in sorted((out / name).glob("*.arrow")) if (out / name).is_dir() else []:
        if f"{name}/{stray.name}" not in listed:
            report.problems.append(
                f"{stray}: not listed in {MANIFEST}, yet `{name}/*.arrow` loads it; delete it, or re-run the "
                "command that wrote the directory (a resumed run removes it)"
            )


def _check_cache(path: Path, report: Report) -> None:
    if not path.exists():
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            db.execute("SELECT count(*) FROM completions").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        verdict = str(exc)
    if verdict != "ok":
        report.problems.append(
            f"{path}: not a readable completion cache ({verdict}); the next run moves it aside and continues "
            "(only completions missing from the output are sampled again)"
        )


def _check_card(root: Path, report: Report) -> None:
    """The card's YAML `configs` globs must each match a file, relative to the card."""
    card = root / "README.md"
    if not card.exists():
        return
    text = card.read_text(errors="replace")
    if not text.startswith("---"):
        return
    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError as exc:
        report.problems.append(
            f"{card}: its YAML header does not parse ({str(exc).splitlines()[0]}); re-write it with `rsynth card`"
        )
        return
    for config in meta.get("configs") or []:
        for f in config.get("data_files") or []:
            if not glob.glob(os.path.join(root, f["path"])):
                report.problems.append(
                    f"{card}: config {config.get('config_name')!r} points at {f['path']!r}, which matches no "
                    f"file; re-write the card with `rsynth card {root}`"
                )
