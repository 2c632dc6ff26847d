"""What a judge costs per trace next to OmegaPRM, on the demo recipe's setting, in one run.

1. The demo recipe's problems and annotate-prm stages (recipes/demo.yaml: arithmetic, k0=8, k=4,
   max-search 2, rollout budget 40, 96 new tokens) on its model (the embedded SmolLM2-135M-Instruct
   by default). OmegaPRM's cost is every completion it sampled (pre-filter, bisections, pool
   searches, questions that yielded no trace included) divided by the labelled traces it produced.
2. `rsynth judge` on those traces with the same engine: one greedy judgement per trace, and a
   majority of N sampled judgements. Its cost is its completions and generated tokens per trace.

Generated tokens are what an engine pays for by the step; prompt (prefill) tokens are not counted
for either method (the judge reads the whole trace once per request, OmegaPRM a prefix per request).
Engine seconds are measured side by side on one engine; only their ratios mean anything.

Usage: PYTHONPATH=. python bench/judge_cost.py [--problems 4] [--model M] [--judge-tokens 256] [--votes 4]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsynth.data.shards import iter_split_rows
from rsynth.engines.base import Engine, SamplingParams
from rsynth.recipes.adapters import STAGES, StageContext
from rsynth.recipes.builder import make_engine
from rsynth.recipes.recipe import load_recipe
from rsynth.stages.judge import JudgeConfig, run_judge

REPO = Path(__file__).resolve().parents[1]


def omegaprm_cost(recipe, tmp: Path, engine: Engine) -> tuple[Path, dict[str, float]]:
    """Run the demo's problems and annotate-prm stages; returns the labels dir and their cost."""
    problems, annotate = recipe.stage("problems"), recipe.stage("annotate-prm")
    STAGES["problems"].run(StageContext("problems", problems.params, None, tmp / "problems", True, True))
    busy = engine.stats.busy_seconds
    out = tmp / "annotate-prm"
    STAGES["annotate-prm"].run(
        StageContext("annotate-prm", annotate.params, str(tmp / "problems"), out, True, True, engine=engine)
    )
    questions = list(iter_split_rows(out, "questions"))
    return out, {
        "traces": len(list(iter_split_rows(out, "data"))),
        "completions": sum(q["completions"] for q in questions),
        "tokens": sum(q["generated_tokens"] for q in questions),
        "seconds": engine.stats.busy_seconds - busy,
    }


def judge_cost(labels: Path, out: Path, engine: Engine, config: JudgeConfig) -> dict[str, float]:
    busy = engine.stats.busy_seconds
    run_judge(str(labels), {}, out, engine, config, overwrite=True, quiet=True)
    rows = [*iter_split_rows(out, "data"), *iter_split_rows(out, "unparsed")]
    return {
        "traces": len(rows),
        "completions": sum(len(r["judge_votes"]) for r in rows),
        "tokens": sum(r["judge_tokens"] for r in rows),
        "seconds": engine.stats.busy_seconds - busy,
        "parsed": sum(v is not None for r in rows for v in r["judge_votes"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--problems", type=int, default=4, help="demo problems (the recipe has 8; 4 keeps it short on 2 cores)"
    )
    ap.add_argument("--model", default=None, help="default: the demo recipe's model (embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--judge-tokens", type=int, default=256)
    ap.add_argument("--votes", type=int, default=4)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rsynth-judge-bench-"))
    sets = [f"out={tmp}", f"stages.problems.n={args.problems}", "defaults.engine=hf"]
    recipe = load_recipe(
        REPO / "recipes" / "demo.yaml", sets + ([f"defaults.model={args.model}"] if args.model else [])
    )
    engine = make_engine(recipe.stage("annotate-prm").params, None)
    labels, omega = omegaprm_cost(recipe, tmp, engine)
    if not omega["traces"]:
        raise SystemExit("OmegaPRM labelled no trace on these problems; try more --problems")
    judges = [
        (
            "judge, 1 greedy judgement",
            JudgeConfig(sampling=SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=args.judge_tokens)),
        ),
        (
            f"judge, majority of {args.votes} (T=0.7)",
            JudgeConfig(
                n_judgements=args.votes,
                sampling=SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=args.judge_tokens),
            ),
        ),
    ]
    rows = [("OmegaPRM (demo settings)", omega)] + [
        (name, judge_cost(labels, tmp / f"judge-{c.n_judgements}", engine, c)) for name, c in judges
    ]

    table = Table(
        title=f"judge vs OmegaPRM cost per labelled trace ({engine.model}, {args.problems} demo problems, "
        f"{omega['traces']} OmegaPRM traces, judge max {args.judge_tokens} new tokens)"
    )
    for col in (
        "labeller",
        "completions/trace",
        "gen. tokens/trace",
        "tokens vs OmegaPRM",
        "engine s vs OmegaPRM",
        "parsed verdicts",
    ):
        table.add_column(col, justify="right")
    for name, c in rows:
        n = c["traces"]
        parsed = f"{c['parsed']}/{c['completions']}" if "parsed" in c else "-"
        table.add_row(
            name,
            f"{c['completions'] / n:.1f}",
            f"{c['tokens'] / n:.0f}",
            f"{(c['tokens'] / n) / (omega['tokens'] / omega['traces']):.2f}",
            f"{(c['seconds'] / n) / (omega['seconds'] / omega['traces']):.2f}",
            parsed,
        )
    Console(width=200).print(table)
    engine.close()


if __name__ == "__main__":
    main()
