"""Correct first-error labels per completion: Math-Shepherd, OmegaPRM as published, rsynth's defaults.

Every method runs under the same controlled policies (rsynth.annotators.scripted), over a grid of
regimes: q (chance of a right answer after the first error) x p (mean chance from a clean prefix;
each question draws its own p from Beta(C*p, C*(1-p))) x decline (the chance drops to q at the error
-- "step" -- or halves towards q per step after it -- "gradual"). Solutions have M steps, M drawn
per question from --lengths. Two modes:
- root: the question only. OmegaPRM pre-filters (k0) and searches its pool; Math-Shepherd samples
  --ms-solutions solutions and labels every step of each. Reported: correct first-error traces (wrong
  traces whose located first error is the planted one) per 1000 completions, first-error accuracy
  over the wrong traces, completions per wrong trace, and the all-positive traces (rsynth's new
  output) per 1000 completions with the share of them that are truly error-free;
- given: one planted wrong trace per question is labelled (no pool search).

    PYTHONPATH=. python bench/rollout_efficiency.py                  # 30 questions per regime, a few minutes
    PYTHONPATH=. python bench/rollout_efficiency.py --questions 100  # the table in docs/annotators.md
    PYTHONPATH=. python bench/rollout_efficiency.py --candidates     # also the settings defaults were chosen from
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from rsynth.annotators.base import GivenTrace, Search, SearchResult, drive
from rsynth.annotators.math_shepherd import MathShepherdConfig, math_shepherd_search
from rsynth.annotators.omegaprm import OmegaPRMConfig, omegaprm_search
from rsynth.annotators.scripted import ScriptedPolicy, planted_trace, true_first_error

TOKENS_PER_STEP = 30


@dataclass(frozen=True)
class Method:
    name: str
    search: Callable[[GivenTrace | None, int], Search]


def ms(n: int, min_correct: int = 1, solutions: int = 4) -> Method:
    rule = "he" if min_correct == 1 else f"threshold={min_correct / n}"
    cfg = MathShepherdConfig(n=n, rule=rule)
    return Method(f"math-shepherd n={n} >={min_correct}/{n}", lambda t, s: math_shepherd_search(cfg, t, solutions))


def omega(name: str, cfg: OmegaPRMConfig) -> Method:
    return Method(name, lambda t, s: omegaprm_search(cfg, s, t))


def methods(candidates: bool, ms_solutions: int) -> list[Method]:
    k = OmegaPRMConfig().k  # Math-Shepherd at the defaults' k: "equal k"
    out = [
        ms(k, 1, ms_solutions),
        ms(k, 2, ms_solutions),
        omega("omegaprm paper rules, openr settings k=16 (rsynth before)", OmegaPRMConfig.paper()),
        omega("omegaprm paper rules k=8", OmegaPRMConfig.paper(k=8)),
        omega("rsynth defaults (k=16 >=2 chunks=2)", OmegaPRMConfig()),
    ]
    if candidates:
        for k, mc, chunks in [
            (8, 1, 2),
            (8, 2, 1),
            (8, 2, 2),
            (16, 1, 2),
            (16, 2, 1),
            (16, 2, 2),
            (16, 2, 4),
            (16, 3, 2),
        ]:
            out.append(omega(f"k={k} >={mc} chunks={chunks}", OmegaPRMConfig(k=k, min_correct=mc, chunks=chunks)))
        out.append(omega("defaults, plain >=min_correct rule (dead-delta 0)", OmegaPRMConfig(dead_delta=0.0)))
    return out


@dataclass
class Tally:
    completions: int = 0
    wrong: int = 0
    hits: int = 0
    positive: int = 0
    positive_clean: int = 0

    def add(self, res: SearchResult, given: bool) -> None:
        self.completions += res.counters.completions
        for i, t in enumerate(res.traces):
            if given and i > 0:
                break
            truth = true_first_error(t.steps)
            if t.correct:
                counted = t.first_error == -1 and not given
                self.positive += counted
                self.positive_clean += counted and truth == -1
            else:
                self.wrong += 1
                self.hits += t.first_error == truth

    def cells(self) -> list[str]:
        per_k = lambda x: 1000 * x / self.completions if self.completions else 0.0  # noqa: E731
        acc = self.hits / self.wrong if self.wrong else 0.0
        per_trace = self.completions / self.wrong if self.wrong else float("inf")
        clean = self.positive_clean / self.positive if self.positive else 0.0
        return [
            f"{per_k(self.hits):.1f}",
            f"{acc:.3f}",
            f"{per_trace:.0f}",
            f"{per_k(self.positive):.0f}",
            f"{clean:.3f}",
        ]


def questions(
    n: int, p: float, lengths: tuple[int, ...], concentration: float, seed: int
) -> list[tuple[int, float, int]]:
    """(steps, per-question p, planted first error of the given trace) for each question."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        m = rng.choice(lengths)
        out.append((m, rng.betavariate(concentration * p, concentration * (1 - p)), rng.randrange(m)))
    return out


def run(method: Method, qs, q: float, decline: str, given: bool) -> Tally:
    tally = Tally()
    for i, (m, p, e) in enumerate(qs):
        policy = ScriptedPolicy(m, p, q, seed=i, tokens_per_step=TOKENS_PER_STEP, decline=decline)
        tally.add(drive(method.search(planted_trace(m, e) if given else None, i), policy), given)
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=30, help="questions per regime (docs/annotators.md: 100)")
    ap.add_argument("--q", type=float, nargs="+", default=[0.02, 0.1, 0.2])
    ap.add_argument("--p", type=float, nargs="+", default=[0.15, 0.4, 0.7])
    ap.add_argument("--decline", nargs="+", default=["step", "gradual"], choices=["step", "gradual"])
    ap.add_argument(
        "--lengths", type=int, nargs="+", default=[8, 16, 32], help="solution lengths M, one drawn per question"
    )
    ap.add_argument("--concentration", type=float, default=4.0, help="C of the per-question Beta(C*p, C*(1-p))")
    ap.add_argument(
        "--ms-solutions", type=int, default=4, help="math-shepherd root mode: solutions sampled per question"
    )
    ap.add_argument("--modes", nargs="+", default=["root", "given"], choices=["root", "given"])
    ap.add_argument(
        "--candidates", action="store_true", help="also run the candidate settings the defaults were chosen from"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    ms_ = methods(args.candidates, args.ms_solutions)
    print(
        f"{args.questions} questions per regime, M in {args.lengths}, per-question p ~ Beta({args.concentration}p, "
        f"{args.concentration}(1-p)), {TOKENS_PER_STEP} tokens/step. Cells: correct first-error traces per 1000 "
        "completions | first-error accuracy | completions per wrong trace | positive traces per 1000 completions | "
        "share of positives truly error-free (root mode only).\n"
    )
    for mode in args.modes:
        print(f"### {mode} mode\n")
        print("| q | p | decline | method | correct FE /1k | FE acc | compl/trace | positives /1k | pos clean |")
        print("|---|---|---|---|---:|---:|---:|---:|---:|")
        for q, p, decline in itertools.product(args.q, args.p, args.decline):
            qs = questions(args.questions, p, tuple(args.lengths), args.concentration, args.seed)
            for method in ms_:
                cells = run(method, qs, q, decline, mode == "given").cells()
                if mode == "given":
                    cells[3:] = ["-", "-"]
                print(f"| {q} | {p} | {decline} | {method.name} | " + " | ".join(cells) + " |")
        print()
    print(f"elapsed {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
