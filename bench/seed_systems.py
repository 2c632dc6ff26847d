"""Yield of the seed systems of issue 27 on 2 cores, one table each.

1. Absolute Zero code tasks (`generate code-tasks`): programs from HumanEval + MBPP+ canonical
   solutions (no model), and programs proposed by the model (the embedded SmolLM2-135M-Instruct by
   default) shown 3 references; tasks per type proposed, valid and learnable (solver, the same model,
   solves some but not all of its attempts) per 100 model calls (proposer + solver calls).
2. SPC injected errors (`generate injected-errors --method rule`): kept traces per 100 correct
   solutions, on the procedural templates the rules were written against and on GSM8K train gold
   solutions (calculator annotations removed), which they were not tuned on; and, with
   `--mc-k K`, how often K rollouts of the model agree with the injected first error (MC of the
   prefix before > 0, after = 0).
3. ThinkPRM critique filter: critiques kept per 100 judgements, read from a critic-data build
   (`rsynth build recipes/critic-data.yaml`) given with --critic-build.

Usage: PYTHONPATH=. python bench/seed_systems.py [--model M] [--seeds 20] [--proposals 8] [--mc-k 4] [--critic-build DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import tempfile
from collections import Counter
from itertools import islice
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsynth.data.shards import iter_split_rows
from rsynth.engines.base import SamplingParams
from rsynth.engines.params import EngineParams
from rsynth.stages.codetasks import run_code_tasks
from rsynth.stages.codetasks_params import CodeTasksParams
from rsynth.stages.inject import InjectParams, run_inject
from rsynth.synth.codetasks import TASK_TYPES

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "shared" if (REPO / "shared").is_dir() else REPO.parent / "shared"
console = Console(width=180)


def seed_file(path: Path, n: int) -> Path:
    rows = [json.loads(line) for line in islice(gzip.open(SHARED / "benchmarks/humaneval.jsonl.gz", "rt"), n)]
    rows += [json.loads(line) for line in islice(open(SHARED / "benchmarks/mbppplus.jsonl"), n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def code_tasks(tmp: Path, engine, args) -> None:
    seeds = seed_file(tmp / "seeds.jsonl", args.seeds)
    table = Table(title="Absolute Zero code tasks (sandboxed; solver = the same model, 2 attempts)")
    for col in (
        "programs",
        "model calls",
        "programs valid",
        *(f"{t} valid / learnable" for t in TASK_TYPES),
        "rejected reasons",
        "per 100 model calls: valid / learnable tasks",
    ):
        table.add_column(col)
    sampling = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=args.tokens, seed=0)
    for programs, limit in (("seeds", 2 * args.seeds), ("propose", args.proposals)):
        out = tmp / f"tasks-{programs}"
        params = CodeTasksParams(programs=programs, proposals=1, solver_model="same", solver_attempts=2, max_inputs=4)
        stats = run_code_tasks(
            str(seeds), out, params, sampling, engine, engine, quiet=True, overwrite=True, limit=limit
        )
        tasks = list(iter_split_rows(out, "data"))
        solver_calls = 2 * len(tasks)
        proposer_calls = stats["counts"].get("proposer calls", 0)
        calls = proposer_calls + solver_calls
        valid = Counter(t["task_type"] for t in tasks)
        learn = Counter(t["task_type"] for t in tasks if 0 < (t["solve_rate"] or 0) < 1)
        reasons = Counter(r["reason"].split(":")[0] for r in iter_split_rows(out, "rejected"))
        progs = sum(v for k, v in stats["counts"].items() if k.startswith("valid programs"))
        total = limit if programs == "seeds" else proposer_calls
        per = f"{100 * len(tasks) / calls:.1f} / {100 * sum(learn.values()) / calls:.1f}" if calls else "-"
        table.add_row(
            f"{programs} ({total})",
            f"{proposer_calls} + {solver_calls}",
            str(progs),
            *(f"{valid[t]} / {learn[t]}" for t in TASK_TYPES),
            ", ".join(f"{k} {v}" for k, v in reasons.most_common(4)) or "-",
            per,
        )
    console.print(table)


def gsm8k_solutions(path: Path, n: int) -> Path:
    rows = []
    for i, line in enumerate(islice(open(SHARED / "seeds/gsm8k_train.jsonl"), n)):
        r = json.loads(line)
        body, answer = r["answer"].rsplit("####", 1)
        steps = [re.sub(r"<<[^>]*>>", "", s).strip() for s in body.strip().splitlines() if s.strip()]
        rows.append(
            {
                "id": f"gsm8k-{i}",
                "problem": r["question"],
                "reference_answer": answer.strip().replace(",", ""),
                "gold_steps": steps + [f"The answer is: {answer.strip()}"],
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def injected(tmp: Path, engine, args) -> None:
    from rsynth.stages.problems import write_template_problems
    from rsynth.synth.templates import Knobs

    write_template_problems(tmp / "problems", "mixed", args.solutions, 0, Knobs(3, 20), shard_size=1000, overwrite=True)
    sources = {
        "templates (tuned on)": str(tmp / "problems"),
        "GSM8K train gold (not tuned on)": str(gsm8k_solutions(tmp / "gsm.jsonl", args.solutions)),
    }
    table = Table(title="SPC injected errors (rule-based, 1 attempt per solution)")
    for col in ("source", "solutions", "kept per 100", "by kind", "not kept"):
        table.add_column(col)
    for name, src in sources.items():
        out = tmp / f"inj-{len(table.rows)}"
        stats = run_inject(src, out, InjectParams(), SamplingParams(seed=0), quiet=True, overwrite=True)
        c = stats["counts"]
        kinds = ", ".join(f"{k.split(':')[-1]} {v}" for k, v in sorted(c.items()) if k.startswith("kept"))
        removed = ", ".join(f"{k.split(': ')[1]} {v}" for k, v in sorted(c.items()) if k.startswith("removed"))
        table.add_row(
            name,
            str(c["correct solutions"]),
            f"{100 * stats['injected traces (data/)'] / c['correct solutions']:.0f}",
            kinds,
            removed,
        )
    console.print(table)
    if args.mc_k:
        out = tmp / "inj-mc"
        stats = run_inject(
            str(tmp / "problems"),
            out,
            InjectParams(mc_confirm=args.mc_k),
            SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=96, seed=0),
            engine,
            quiet=True,
            overwrite=True,
            limit=args.mc_traces,
        )
        c = stats["counts"]
        rows = [json.loads(r["mutation"]) for r in iter_split_rows(out, "data")]
        console.print(
            f"MC confirmation (k={args.mc_k}, {engine.model}): {c.get('MC agrees with the injected first error', 0)} of "
            f"{c.get('MC confirmations', 0)} injected traces agree; mean MC before {sum(r['mc_before'] for r in rows) / max(len(rows), 1):.2f}, "
            f"after {sum(r['mc_after'] for r in rows) / max(len(rows), 1):.2f}"
        )


def critiques(build: Path) -> None:
    from rsynth.data.shards import load_manifest

    judge, filt = load_manifest(build / "judge"), load_manifest(build / "filter-critiques")
    stats = filt.get("stats", {})
    judgements = judge.get("stats", {}).get("judgements this run") or 0
    kept = stats.get("kept critiques (data/)", 0)
    table = Table(title=f"ThinkPRM critique filter ({build})")
    for col in ("judgements", "parsed (judged traces x n)", "kept", "kept per 100 judgements", "reasons"):
        table.add_column(col)
    parsed = stats.get("kept critiques (data/)", 0) + stats.get("filtered critiques (filtered/)", 0)
    table.add_row(
        str(judgements),
        str(parsed),
        str(kept),
        f"{100 * kept / judgements:.1f}" if judgements else "-",
        ", ".join(f"{k} {v}" for k, v in stats.get("reasons", {}).items()),
    )
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--seeds", type=int, default=10, help="HumanEval and MBPP+ rows each")
    ap.add_argument("--proposals", type=int, default=8, help="proposer calls")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--solutions", type=int, default=100)
    ap.add_argument("--mc-k", type=int, default=4)
    ap.add_argument("--mc-traces", type=int, default=6)
    ap.add_argument("--critic-build", type=Path, default=None)
    ap.add_argument("--workdir", default=None, help="where the temporary outputs go (default: the system's temp dir)")
    ap.add_argument("--skip", default="", help="comma-separated: code,inject,critiques")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    engine = EngineParams(model=args.model).build(None) if {"code", "inject"} - skip else None
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        if "inject" not in skip:
            injected(Path(tmp), engine, args)
        if "code" not in skip:
            code_tasks(Path(tmp), engine, args)
    if engine is not None:
        engine.close()
    if args.critic_build and "critiques" not in skip:
        critiques(args.critic_build)


if __name__ == "__main__":
    main()
