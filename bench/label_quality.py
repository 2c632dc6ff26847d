"""Label quality on ProcessBench GSM8K given traces: what a PRM would be trained on, per policy regime.

Each of the 400 ProcessBench GSM8K traces is labelled by OmegaPRM in given mode, its rollouts served
by a scripted policy (rsynth.annotators.scripted) that knows the trace's true first error (the
ProcessBench label): a rollout from a clean prefix is right with chance p, from one past the error with
chance q (lucky recovery), or -- "gradual" -- with a chance that halves towards q per step after it.
Columns:
- traces/item and labels/trace: trace rows out per input trace, labelled steps per trace row;
- estimated: share of steps backed by a rollout estimate (a trace's last step is its verdict, not one);
- contradictions: (problem, prefix) pairs with both hard labels in the output -- must be 0;
- acc err / acc correct / F1 (all): ProcessBench accuracies and F1 of the rows' first_error over every
  item; F1 (estimated only): over the items whose label rests on rollouts (`eval-labels
  --require-rollouts`), with items (est.) saying how many that leaves. Given mode labels a right-answer
  trace all-positive without rollouts, so "acc correct" is 1.000 by construction and no correct item
  is left to score F1 on with estimates only (n/a): the figure the first F1 hides.

    PYTHONPATH=. python bench/label_quality.py                 # all 400 traces, every regime (~1 min)
    PYTHONPATH=. python bench/label_quality.py --search-given --pool-any   # where contradictions used to arise
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rsynth.annotators.base import GivenTrace, drive
from rsynth.annotators.omegaprm import OmegaPRMConfig, omegaprm_search
from rsynth.annotators.scripted import ScriptedPolicy
from rsynth.data.formats import processbench_scores
from rsynth.stages.label_summary import contradictions, estimate_shares, is_backed

PB = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "processbench_gsm8k.json"
REGIMES = [  # (name, p, q, decline)
    ("easy, no recovery", 0.8, 0.0, "step"),
    ("easy, lucky recoveries", 0.8, 0.2, "step"),
    ("many lucky recoveries", 0.8, 0.4, "step"),
    ("hard, lucky recoveries", 0.3, 0.1, "step"),
    ("gradual decline", 0.7, 0.05, "gradual"),
]


def label_items(items: list[dict], p: float, q: float, decline: str, config: OmegaPRMConfig, seed: int) -> list[dict]:
    """Trace rows (the label fields annotate-prm writes) for every item, ProcessBench ids kept."""
    rows = []
    for n, item in enumerate(items):
        steps = tuple(item["steps"])
        policy = ScriptedPolicy(len(steps), p=p, q=q, seed=seed + n, decline=decline).know(steps, item["label"])
        given = GivenTrace(steps, item["final_answer_correct"], None)
        result = drive(omegaprm_search(config, seed + n, given), policy)
        for j, t in enumerate(result.traces):
            rows.append(
                {
                    "id": item["id"] if j == 0 else f"{item['id']}/omegaprm/{j}",
                    "problem": item["problem"],
                    "steps": list(t.steps),
                    **t.labels,
                }
            )
    return rows


def measure(items: list[dict], rows: list[dict]) -> dict[str, float]:
    given = {r["id"]: r for r in rows if "/" not in r["id"]}
    pred = {i: r["first_error"] for i, r in given.items()}
    backed = [it for it in items if is_backed(given[it["id"]])]
    steps, estimated, _ = estimate_shares(rows)
    every, est = processbench_scores(pred, items), processbench_scores(pred, backed)
    return {
        "traces/item": len(rows) / len(items),
        "labels/trace": sum(len(r["step_hard"]) for r in rows) / len(rows),
        "estimated": estimated / steps,
        "contradictions": contradictions(rows),
        "acc err": every["accuracy (erroneous)"],
        "acc correct": every["accuracy (correct)"],
        "F1 (all)": every["F1"],
        "F1 (estimated only)": est["F1"] if est["correct items"] and est["erroneous items"] else "n/a",
        "items (est.)": f"{est['erroneous items']} err + {est['correct items']} correct",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gold", type=Path, default=PB, help="ProcessBench GSM8K file (JSON list)")
    ap.add_argument("--items", type=int, default=0, help="first N items only (0: all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the scripted policies and searches")
    ap.add_argument(
        "--search-given", action="store_true", help="also search the pool of wrong rollouts (more traces per item)"
    )
    ap.add_argument(
        "--pool-any",
        action="store_true",
        help="pool wrong rollouts of any 0 < MC < 1 state (the paper), not only alive ones",
    )
    args = ap.parse_args()
    items = json.loads(args.gold.read_text())
    items = items[: args.items] if args.items else items
    config = OmegaPRMConfig(search_given=args.search_given, pool_alive_only=not args.pool_any)
    cols = [
        "traces/item",
        "labels/trace",
        "estimated",
        "contradictions",
        "acc err",
        "acc correct",
        "F1 (all)",
        "F1 (estimated only)",
        "items (est.)",
    ]
    extra = (" + pool search" if args.search_given else "") + (" (--pool-any)" if args.pool_any else "")
    print(f"{len(items)} ProcessBench GSM8K items, OmegaPRM given mode{extra}\n")
    print("| regime | p | q | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for name, p, q, decline in REGIMES:
        m = measure(items, label_items(items, p, q, decline, config, args.seed))
        cells = [f"{m[c]:.3f}" if isinstance(m[c], float) else str(m[c]) for c in cols]
        print(f"| {name} | {p} | {q} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
