"""RL reward throughput: rsynth's rewards per second, beside the trainer's default grader.

Math: MATH-500 reference answers inside full model-style outputs (reasoning, then the answer), in
five kinds: the answer boxed as written; the same value written differently (spacing, \\dfrac,
a trailing .0 on integers); a wrong answer (one digit changed); a hedge (a wrong box, then the
right one); and the Minerva ending "The final answer is X." without a box. What each kind should
score is known (1, 1, 0, 0, 1), so each grader's accuracy and the agreement between the two are
printed. The trainer's default is verl 0.9.1's `default_compute_score` for a MATH-500 data source
(`math_reward`: string comparison after normalisation). A third row scores GRPO-style groups (8
completions per prompt, 2 distinct answers each) with the verdict cache on.

Code: MBPP+ tasks (their base asserts as the tests), each once with its canonical solution and
once with a wrong program, inside a fenced block, run in the sandbox. TRL and OpenRLHF ship no code
grader, and verl's (`prime_code`) takes stdin/stdout cases, not assert tests: no trainer column.

Each configuration runs on a fresh scorer with the cache off (the cost of verification itself),
for 1 and 2 verifier workers, after a warm-up call (a trainer keeps its scorer: worker start-up
is paid once per run, not per batch).

    python bench/reward_throughput.py [--math 500] [--code 100] [--skip-code]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsynth.rewards import RewardParams, RewardScorer, Rollout

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = next(
    (p for p in (ROOT / "shared" / "benchmarks", ROOT.parent / "shared" / "benchmarks") if p.is_dir()),
    ROOT.parent / "shared" / "benchmarks",
)
KINDS = ("boxed", "rewritten", "wrong", "hedged", "final-answer")
EXPECTED = {"boxed": 1.0, "rewritten": 1.0, "wrong": 0.0, "hedged": 0.0, "final-answer": 1.0}


def rewritten(answer: str) -> str:
    """The same value written differently: integers get `.0`, fractions `\\dfrac`, commas a space."""
    if re.fullmatch(r"-?\d+", answer):
        return answer + ".0"
    return answer.replace("\\frac", "\\dfrac").replace(",", ", ")


def wrong(answer: str) -> str:
    m = re.search(r"\d", answer)
    if m is None:
        return answer + "+1"
    return answer[: m.start()] + str((int(m.group()) + 1) % 10) + answer[m.end() :]


def math_rollouts(n: int) -> list[tuple[Rollout, str]]:
    rows = [json.loads(line) for line in (BENCHMARKS / "math500.jsonl").read_text().splitlines()]
    out = []
    for i in range(n):
        row = rows[i % len(rows)]
        ans, kind = row["answer"], KINDS[i % len(KINDS)]
        head = (
            f"Let me work through this. {row['problem'][:300]}\n\nFirst, I set up the quantities and simplify "
            "step by step, checking each computation.\n\n"
        )
        tail = {
            "boxed": f"Therefore the answer is $\\boxed{{{ans}}}$.",
            "rewritten": f"So we get $\\boxed{{{rewritten(ans)}}}$.",
            "wrong": f"Therefore the answer is $\\boxed{{{wrong(ans)}}}$.",
            "hedged": f"It is $\\boxed{{{wrong(ans)}}}$, or possibly $\\boxed{{{ans}}}$.",
            "final-answer": f"Final Answer: The final answer is ${ans}$. I hope it is correct.",
        }[kind]
        out.append((Rollout(ans, head + tail, "math"), kind))
    return out


def code_rollouts(n: int) -> list[tuple[Rollout, str]]:
    rows = [json.loads(line) for line in (BENCHMARKS / "mbppplus.jsonl").read_text().splitlines()]
    out = []
    for i in range(n):
        row = rows[(i // 2) % len(rows)]
        spec = json.dumps({"tests": row["assertion"], "style": "assert", "entry_point": row["entry_point"]})
        program = row["canonical_solution"].strip("\n")
        kind = "canonical" if i % 2 == 0 else "wrong"
        if kind == "wrong":  # the same function, answering None: fails unless every test expects None
            program += (
                f"\n\n_orig = {row['entry_point']}\ndef {row['entry_point']}(*args, **kwargs):\n    return None\n"
            )
        out.append(
            (Rollout(spec, f"Here is the solution.\n```python\n{program}\n```\nIt passes the examples.", "code"), kind)
        )
    return out


def timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def rsynth_scores(rollouts: list[Rollout], workers: int, cache: bool = False) -> tuple[list[float], float]:
    params = RewardParams(workers=workers, cache_size=65536 if cache else 0)
    with RewardScorer(params) as scorer:
        # a trainer's scorer is long-lived: start its workers (and a sandbox) before the clock starts
        domain = rollouts[0].domain
        warm = [Rollout(str(900 + i), f"\\boxed{{{900 + i}}}", "math") for i in range(2 * workers)]
        if domain == "code":
            warm = [Rollout(r.ground_truth, r.completion, "code") for r in rollouts[:workers]]
        scorer.score(warm)
        scorer._cache.entries.clear()
        rewards, seconds = timed(lambda: scorer.score(rollouts))
    return [r.score for r in rewards], seconds


def verl_scores(rollouts: list[Rollout]) -> tuple[list[float], float] | None:
    try:
        from verl.utils.reward_score import default_compute_score
    except ImportError:
        return None
    return timed(
        lambda: [float(default_compute_score("HuggingFaceH4/MATH-500", r.completion, r.ground_truth)) for r in rollouts]
    )


def accuracy(scores: list[float], kinds: list[str], expected: dict[str, float]) -> str:
    return f"{sum(s == expected[k] for s, k in zip(scores, kinds)) / len(scores):.1%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--math", type=int, default=500, help="math rollouts")
    ap.add_argument("--code", type=int, default=100, help="code rollouts (half canonical, half wrong)")
    ap.add_argument("--skip-code", action="store_true")
    args = ap.parse_args()
    console = Console()

    math = math_rollouts(args.math)
    rollouts, kinds = [r for r, _ in math], [k for _, k in math]
    table = Table(title=f"math rewards: {len(rollouts)} MATH-500 answers in full outputs ({', '.join(KINDS)})")
    for col in ("grader", "workers", "rewards/s", "accuracy", "agreement with verl"):
        table.add_column(col)
    verl = verl_scores(rollouts)
    per_kind: dict[str, dict[str, str]] = {}
    for workers in (1, 2):
        scores, seconds = rsynth_scores(rollouts, workers)
        agree = f"{sum(a == b for a, b in zip(scores, verl[0])) / len(scores):.1%}" if verl else "-"
        table.add_row("rsynth", str(workers), f"{len(scores) / seconds:.1f}", accuracy(scores, kinds, EXPECTED), agree)
        per_kind["rsynth"] = {
            k: accuracy([s for s, kk in zip(scores, kinds) if kk == k], [k] * kinds.count(k), EXPECTED) for k in KINDS
        }
    if verl:
        table.add_row(
            "verl 0.9.1 default (math_reward)",
            "1 (in-process)",
            f"{len(rollouts) / verl[1]:.1f}",
            accuracy(verl[0], kinds, EXPECTED),
            "100%",
        )
        per_kind["verl"] = {
            k: accuracy([s for s, kk in zip(verl[0], kinds) if kk == k], [k] * kinds.count(k), EXPECTED) for k in KINDS
        }
    groups = [
        Rollout(r.ground_truth, r.completion + f"\n(sample {j})", "math")
        for r in rollouts[: max(1, len(rollouts) // 8)]
        for j in range(8)
    ]
    scores, seconds = rsynth_scores(groups, 2, cache=True)
    table.add_row("rsynth, GRPO groups of 8, cache on", "2", f"{len(scores) / seconds:.1f}", "-", "-")
    console.print(table)
    kinds_table = Table(
        title="math accuracy per kind (what each kind should score: "
        + ", ".join(f"{k} {EXPECTED[k]:g}" for k in KINDS)
        + ")"
    )
    kinds_table.add_column("grader")
    for k in KINDS:
        kinds_table.add_column(k)
    for name, row in per_kind.items():
        kinds_table.add_row(name, *[row[k] for k in KINDS])
    console.print(kinds_table)

    if args.skip_code:
        return
    code = code_rollouts(args.code)
    crollouts, ckinds = [r for r, _ in code], [k for _, k in code]
    ctable = Table(title=f"code rewards: {len(crollouts)} MBPP+ programs (canonical / wrong), sandboxed")
    for col in ("grader", "workers", "rewards/s", "accuracy", "trainer default"):
        ctable.add_column(col)
    for workers in (1, 2):
        scores, seconds = rsynth_scores(crollouts, workers)
        ctable.add_row(
            "rsynth",
            str(workers),
            f"{len(scores) / seconds:.1f}",
            accuracy(scores, ckinds, {"canonical": 1.0, "wrong": 0.0}),
            "none (TRL, OpenRLHF; verl's prime_code takes stdio cases)",
        )
    console.print(ctable)


if __name__ == "__main__":
    main()
