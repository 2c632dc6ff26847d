"""`rsynth card DIR`: a Hugging Face dataset card for a build (or one stage's output).

Everything in the card is read back from what the build wrote, never from the recipe's intent:
row counts from each stage's manifest, provenance from `build.json` and the traces' `provenance`
column, label statistics and plots from the labelled rows themselves. The YAML header's `configs`
point at the Arrow shard globs relative to the card's own directory (DIR, or `-o OUT`), which is
what `rsynth push` uploads as the repo root; every glob is checked to match a file before the card
is written, so a card never promises data that is not there.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

import yaml

from rsynth.data.shards import MANIFEST, atomic_write_bytes, iter_split_rows
from rsynth.errors import UserError

REMOVED_SPLITS = ("filtered", "removed", "rejected")
PRIMARY_SPLITS = ("data", "kept")


def _stage_dirs(root: Path) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    """(build record, [(stage id, output dir)]) for a build root or a single stage directory."""
    record_path = root / "build.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        order = record.get("stage_order") or list(record["stages"])
        return record, [(sid, root / record["stages"][sid]["dir"]) for sid in order if sid in record["stages"]]
    if (root / MANIFEST).exists():
        return {}, [(root.name, root)]
    raise UserError(f"card: {root} is neither a build output (build.json) nor a stage output (manifest.json)")


def size_category(n: int) -> str:
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ]
    return next((label for limit, label in bounds if n < limit), "n>10M")


def _counts(manifest: dict[str, Any]) -> dict[str, int]:
    rows = {name: info["rows"] for name, info in manifest["splits"].items()}
    return {
        "kept": sum(rows.get(s, 0) for s in PRIMARY_SPLITS),
        "removed": sum(rows.get(s, 0) for s in REMOVED_SPLITS),
        "errors": rows.get("errors", 0),
        **{f"{k} rows": v for k, v in rows.items() if k not in (*PRIMARY_SPLITS, *REMOVED_SPLITS, "errors")},
    }


def _provenance(stage_dir: Path) -> list[dict[str, Any]]:
    """Distinct provenance records of a stage's traces (model, engine, sampling, seed, verifier)."""
    seen: dict[str, dict[str, Any]] = {}
    for row in iter_split_rows(stage_dir, "data"):
        p = row.get("provenance")
        if p:
            seen.setdefault(json.dumps(p, sort_keys=True), p)
    return list(seen.values())


def _rel(path: Path, base: Path) -> str:
    """`path` as the card in `base` refers to it (with `..` when the card is written elsewhere)."""
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def _configs(stages: list[tuple[str, Path, dict[str, Any]]], base: Path, default: str | None) -> list[dict[str, Any]]:
    configs = []
    for sid, d, manifest in stages:
        for split, info in manifest["splits"].items():
            if info["rows"] and split != "errors":
                name = sid if split in PRIMARY_SPLITS else f"{sid}-{split}"
                rel = _rel(d / split, base)
                entry: dict[str, Any] = {
                    "config_name": name,
                    "data_files": [{"split": "train", "path": f"{rel}/*.arrow"}],
                }
                if name == default:
                    entry["default"] = True
                configs.append(entry)
    return configs


def check_configs(configs: list[dict[str, Any]], base: Path) -> None:
    """Offline: every config's data_files glob matches at least one file, relative to the card."""
    for c in configs:
        for f in c["data_files"]:
            if not glob.glob(os.path.join(base, f["path"])):
                raise UserError(
                    f"card: config {c['config_name']!r}: data_files {f['path']!r} matches no file under {base}"
                )


def _plots(stages: list[tuple[str, Path, dict[str, Any]]], out: Path) -> list[tuple[str, str, str]]:
    """Write the plots the data supports; returns (file, title, what it shows)."""
    from rsynth.cards.plots import counts_bar, histogram

    by_kind = {m["stage"]: d for _, d, m in stages}  # the last stage of each kind wins
    made = []
    labels = by_kind.get("annotate-prm")
    traces = list(iter_split_rows(labels, "data")) if labels else []
    if traces:
        from rsynth.stages.label_summary import step_estimates

        nodes = step_estimates(labels)
        histogram(
            [n["mc"] for n in nodes],
            out / "plots" / "mc_values.png",
            title="Step MC values",
            xlabel="MC(prefix) = correct rollouts / k",
        )
        ks = sorted({n["k"] for n in nodes})
        made.append(
            (
                "plots/mc_values.png",
                "MC value distribution",
                f"Monte Carlo value of every estimated step prefix ({len(nodes)} nodes of `tree/`, k = {', '.join(map(str, ks)) or '-'} "
                "rollouts each); a trace's final-step verdict is not an estimate and is left out",
            )
        )
        errs = [t["first_error"] for t in traces if t["first_error"] is not None and t["first_error"] >= 0]
        counts_bar(
            errs,
            out / "plots" / "first_error.png",
            title="First-error position (traces with an error)",
            xlabel="0-based index of the first wrong step",
        )
        made.append(
            (
                "plots/first_error.png",
                "First-error position",
                f"{len(errs)} of {len(traces)} labelled traces have a first error",
            )
        )
    step_src = traces or (
        list(iter_split_rows(by_kind["generate-solutions"], "data")) if "generate-solutions" in by_kind else []
    )
    if step_src:
        counts_bar(
            [len(t["steps"] or []) for t in step_src],
            out / "plots" / "steps_per_trace.png",
            title="Steps per trace",
            xlabel="steps",
        )
        made.append(("plots/steps_per_trace.png", "Steps per trace", "number of steps after splitting"))
    rates = _pass_rates(by_kind)
    if rates:
        histogram(
            rates[1],
            out / "plots" / "pass_rate.png",
            title=f"Pass rate per problem ({rates[0]})",
            xlabel="share of samples with a correct final answer",
            bins=10,
        )
        made.append(("plots/pass_rate.png", "Pass-rate histogram", rates[0]))
    return made


def _pass_rates(by_kind: dict[str, Path]) -> tuple[str, list[float]] | None:
    """Per-problem pass rates: from sampled solutions (kept and filtered), else OmegaPRM's pre-filter root MC."""
    if "generate-solutions" in by_kind:
        d = by_kind["generate-solutions"]
        per_problem = {}
        for split in ("data", "filtered"):
            for t in iter_split_rows(d, split):
                per_problem.setdefault(t["problem_id"], t["pass_rate"])
        return "generate solutions", list(per_problem.values())
    if "annotate-prm" in by_kind:
        roots = [
            q["root_mc"] for q in iter_split_rows(by_kind["annotate-prm"], "questions") if q["root_mc"] is not None
        ]
        return "OmegaPRM pre-filter rollouts", roots
    return None


def write_card(directory: Path | str, out: Path | str, *, pretty_name: str | None = None) -> dict[str, Any]:
    """Write OUT/README.md and OUT/plots/*.png for the build (or stage output) in DIRECTORY."""
    from rsynth.stages.label_summary import label_summary

    root, out = Path(directory), Path(out)
    record, dirs = _stage_dirs(root)
    stages = [(sid, d, json.loads((d / MANIFEST).read_text())) for sid, d in dirs if (d / MANIFEST).exists()]
    if not stages:
        raise UserError(f"card: {root} has no finished stage outputs to describe")
    labelled = [s for s in stages if s[2]["stage"] == "annotate-prm"]
    main = (
        [s for s in stages if s[2]["stage"] == "consensus"]
        or labelled
        or [s for s in stages if s[2]["splits"].get("data", {}).get("rows")]
        or stages
    )[-1]
    plots = _plots(stages, out)
    name = pretty_name or record.get("name") or root.name
    meta = {
        "license": record.get("license") or "other",
        "pretty_name": name,
        "task_categories": ["text-generation"],
        "tags": ["synthetic", "math", "reasoning", "process-reward-model", "rsynth"],
        "size_categories": [size_category(_counts(main[2])["kept"])],
        "configs": _configs(stages, out, main[0]),
    }
    check_configs(meta["configs"], out)
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "", f"# {name}", ""]
    if record.get("description"):
        lines += [record["description"].strip(), ""]
    lines += [
        f"Built with rsynth from `{record.get('recipe', root.name)}`. Default config: `{main[0]}`.",
        "",
        "```python",
        "import datasets",
        f"ds = datasets.load_dataset('arrow', data_files='{_rel(main[1] / 'data', out)}/*.arrow', split='train')",
        "```",
        "",
        "## Rows at every stage",
        "",
        "| stage | kind | kept | removed | errors | other splits |",
        "|---|---|---:|---:|---:|---|",
    ]
    for sid, _, manifest in stages:
        c = _counts(manifest)
        other = ", ".join(f"{k}: {v}" for k, v in c.items() if k not in ("kept", "removed", "errors"))
        lines.append(f"| {sid} | {manifest['stage']} | {c['kept']} | {c['removed']} | {c['errors']} | {other} |")
    lines += [
        "",
        "`kept` is the stage's main output (`data/`, or `kept/` for decontaminate); `removed` counts rows routed "
        "aside with their evidence (`filtered/`, `removed/`, `rejected/`); `errors` are bad input rows with source and reason.",
        "",
    ]
    lines += _provenance_section(record, stages)
    for sid, d, _ in labelled:
        lines += [f"## Label statistics ({sid})", "", "| metric | value |", "|---|---:|"]
        lines += [
            f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in label_summary(d).items()
        ]
        lines.append("")
    lines += _judge_section(stages)
    lines += _exports_section(record)
    if plots:
        lines += ["## Plots", ""]
        for file, title, what in plots:
            lines += [f"### {title}", "", f"{what}.", "", f"![{title}]({file})", ""]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "README.md", "\n".join(lines).encode())
    outside = sum(f["path"].startswith("../") for c in meta["configs"] for f in c["data_files"])
    return {
        "card": str(out / "README.md"),
        "stages": len(stages),
        "plots": len(plots),
        "default config": main[0],
        **({"configs pointing outside OUT (push OUT uploads no data for them)": outside} if outside else {}),
    }


def _exports_section(record: dict[str, Any]) -> list[str]:
    """The export files a build wrote, with the step separator a trainer must be given for them."""
    exports = [
        (rec.get("dir", sid), rec.get("params") or {})
        for sid, rec in record.get("stages", {}).items()
        if rec.get("kind") == "export"
    ]
    if not exports:
        return []
    from rsynth.data.formats import parse_separator
    from rsynth.stages.export import export_name

    lines = ["## Exports", "", "| file | format | label | step separator |", "|---|---|---|---|"]
    for d, p in exports:
        sep = json.dumps(parse_separator(p.get("step-separator") or "\n"))
        lines.append(
            f"| `{d}/{export_name({'format': 'trl', **p})}` | {p.get('format')} | {p.get('label')} | `{sep}` |"
        )
    return lines + [
        "",
        "TRL rows keep the steps as a list: give `PRMConfig(step_separator=...)` the separator above "
        '(TRL\'s default `"\\n"`). Formats with one text per trace (math-shepherd, openrlhf) join the tagged steps with it.',
        "",
    ]


def _provenance_section(record: dict[str, Any], stages: list[tuple[str, Path, dict[str, Any]]]) -> list[str]:
    lines = ["## Provenance", ""]
    if record.get("versions"):
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(record["versions"].items())) + ".")
        lines.append("")
    lines += ["| stage | model | engine | sampling | seed | verifier |", "|---|---|---|---|---|---|"]
    for sid, d, manifest in stages:
        for p in _provenance(d) if manifest["stage"] in ("generate-solutions", "generate-code", "annotate-prm") else []:
            sampling = ", ".join(f"{k}={v}" for k, v in (p.get("sampling") or {}).items())
            lines.append(
                f"| {sid} | {p.get('model')} | {p.get('engine')} | {sampling} | {p.get('seed')} | {p.get('verifier')} {p.get('verifier_version')} |"
            )
    params = {sid: rec.get("params") for sid, rec in record.get("stages", {}).items()}
    seeds = {sid: p.get("seed") for sid, p in params.items() if p and p.get("seed") is not None}
    if seeds:
        lines += ["", "Seeds by stage: " + ", ".join(f"{k}={v}" for k, v in seeds.items()) + "."]
    if record.get("recipe_text"):
        lines += [
            "",
            "<details><summary>Recipe</summary>",
            "",
            "```yaml",
            record["recipe_text"].rstrip(),
            "```",
            "",
            "</details>",
        ]
    return lines + [""]


def _judge_section(stages: list[tuple[str, Path, dict[str, Any]]]) -> list[str]:
    """MC-vs-judge first-error confusion (and keep rate) for consensus stages, else for judge stages."""
    from rsynth.stages.consensus import confusion_markdown

    picked = [s for s in stages if s[2]["stage"] == "consensus"] or [s for s in stages if s[2]["stage"] == "judge"]
    lines: list[str] = []
    for sid, d, manifest in picked:
        splits = ("data", "filtered") if manifest["stage"] == "consensus" else ("data",)
        rows = [r for split in splits for r in iter_split_rows(d, split)]
        table = confusion_markdown(rows)
        if not table:
            continue
        judges = {json.dumps(r["judge_provenance"], sort_keys=True) for r in rows if r.get("judge_provenance")}
        lines += [f"## MC vs judge first errors ({sid})", ""]
        if manifest["stage"] == "consensus":
            kept = manifest["splits"]["data"]["rows"]
            lines += [
                f"Consensus filter: kept {kept} of {len(rows)} judged traces (keep rate {kept / len(rows):.3f}); "
                f"the others are in `{sid}/filtered/` with their `consensus_reason`.",
                "",
            ]
        for j in sorted(judges):
            p = json.loads(j)
            lines += [
                f"Judge: {p.get('model')} ({p.get('engine')}, {p.get('template')} prompt, n={(p.get('sampling') or {}).get('n')}).",
                "",
            ]
        lines += table
    return lines
