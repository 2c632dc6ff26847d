"""Rollouts OmegaPRM and Math-Shepherd spend to locate the same planted first errors.

Both methods label the SAME wrong traces under the same controlled policy (rsynth.annotators.scripted):
a rollout from a prefix before the first error reaches the right answer with probability p, one from a
prefix including it with probability q, and every rollout costs TOKENS_PER_STEP tokens per remaining
step. Accuracy is the share of traces whose located first error equals the planted one.

    PYTHONPATH=. python bench/rollout_efficiency.py [--traces 300] [--p 0.7] [--q 0.02]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from rsynth.annotators.base import GivenTrace, Search, drive
from rsynth.annotators.math_shepherd import MathShepherdConfig, math_shepherd_search
from rsynth.annotators.omegaprm import OmegaPRMConfig, omegaprm_search
from rsynth.annotators.scripted import ScriptedPolicy, planted_trace, true_first_error

LENGTHS = (4, 8, 16, 32)
TOKENS_PER_STEP = 30


@dataclass(frozen=True)
class Method:
    name: str
    search: Callable[[GivenTrace, int], Search]


METHODS = (
    Method("math-shepherd n=8 >=1/8", lambda t, s: math_shepherd_search(MathShepherdConfig(n=8), t)),
    Method("math-shepherd n=8 >=2/8", lambda t, s: math_shepherd_search(MathShepherdConfig(n=8, rule="threshold=0.25"), t)),
    Method("omegaprm k=8 >=1/8", lambda t, s: omegaprm_search(OmegaPRMConfig(k=8), s, t)),
    Method("omegaprm k=8 >=2/8", lambda t, s: omegaprm_search(OmegaPRMConfig(k=8, min_correct=2), s, t)),
    Method("omegaprm k=6 >=2/6", lambda t, s: omegaprm_search(OmegaPRMConfig(k=6, min_correct=2), s, t)),
    Method("omegaprm k=4 >=1/4", lambda t, s: omegaprm_search(OmegaPRMConfig(k=4), s, t)),
)


def run(method: Method, traces: list[GivenTrace], p: float, q: float) -> tuple[float, float, float]:
    """Mean completions and tokens per trace, and first-error accuracy."""
    completions = tokens = hits = 0
    for i, trace in enumerate(traces):
        policy = ScriptedPolicy(len(trace.steps), p, q, seed=i, tokens_per_step=TOKENS_PER_STEP)
        res = drive(method.search(trace, i), policy)
        completions += res.counters.completions
        tokens += res.counters.generated_tokens
        hits += res.traces[0].first_error == true_first_error(trace.steps)
    n = len(traces)
    return completions / n, tokens / n, hits / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=300, help="wrong traces per length")
    ap.add_argument("--p", type=float, default=0.7, help="P(right) from a prefix before the first error")
    ap.add_argument("--q", type=float, default=0.02, help="P(right) from a prefix including it")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    rng = random.Random(args.seed)
    table = Table(
        title=(
            f"Rollout efficiency, {args.traces} wrong traces per length, first error uniform, p={args.p}, "
            f"q={args.q}, {TOKENS_PER_STEP} tokens/remaining step. Math-Shepherd n=8 (the paper's N) rolls "
            "out every step but the last; OmegaPRM bisects (given-trace mode, no pool search) at k=8 "
            "(equal per-estimate k) and k=6, k=4 (~log2 M probes instead of M-1, so each can be cheaper). "
            ">=c/k: a step/prefix counts as still-right when at least c of its k rollouts are (c=1 is "
            "both papers' rule; c=2 resists lucky recoveries, q>0). Last step = the trace's own verdict. "
            "Ratio: math-shepherd completions (either rule) over this row's."
        )
    )
    for col in ("steps", "method", "completions/trace", "tokens/trace", "first-error acc", "completions ms/this"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for m in LENGTHS:
        traces = [planted_trace(m, rng.randrange(m)) for _ in range(args.traces)]
        results = [run(method, traces, args.p, args.q) for method in METHODS]
        baseline = results[0][0]
        for method, (comp, tok, acc) in zip(METHODS, results):
            ratio = f"{baseline / comp:.2f}x" if comp else "-"
            table.add_row(str(m), method.name, f"{comp:.1f}", f"{tok:.0f}", f"{acc:.3f}", ratio)
        table.add_section()
    console = Console(width=120)
    console.print(table)
    console.print(f"elapsed {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
