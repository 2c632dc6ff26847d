"""How fully annotate-prm keeps the engine busy, measured side by side in one run.

1. annotate-prm (OmegaPRM) on template problems with a real engine; every engine call it makes is
   recorded. Reported: the engine's busy fraction (time inside `generate` / wall time).
2. The same recorded engine calls replayed back to back on the raw engine (no scheduler, no
   verifier, no cache, no shard writing): the raw engine's tokens/s on exactly the same work.
   Ratio = annotate end-to-end tokens/s / raw tokens/s (target >= 0.9).
3. The same annotation with one question at a time (--concurrent-searches 1, as openr runs): how
   much batching many searches into one engine call buys.
4. The same annotation under `--scheduler async` (one engine request per rollout request, searches
   refilled continuously). On hf this serves one request per forward batch (its deterministic async
   path), so on CPU it is expected to trail lock-step; the async scheduler pays off on continuous-
   batching engines (bench/annotate_occupancy.py).

Usage: python bench/annotate_throughput.py [--model M] [--engine hf|vllm|openai] [--problems 8] [--k0 8] [--k 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsynth.annotators import OmegaPRMConfig
from rsynth.data.schema import PROBLEM_SCHEMA
from rsynth.data.shards import ShardSetWriter
from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams
from rsynth.engines.registry import make_engine
from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate
from rsynth.synth.templates import Knobs, generate_problems


class Recorder(Engine):
    """Forwards to an engine and keeps every call, so the raw engine can replay the same work."""

    def __init__(self, inner: Engine) -> None:
        super().__init__(inner.model)
        self.inner, self.name, self.calls = inner, inner.name, []
        self.stats, self.request_seeded = inner.stats, inner.request_seeded  # the inner engine counts its own work

    @property
    def max_batch_prompts(self) -> int:
        return self.inner.max_batch_prompts

    def identity(self) -> dict:
        return self.inner.identity()

    def can_start(self, sequences: int) -> bool:
        return self.inner.can_start(sequences)

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        raise NotImplementedError  # generate() forwards whole: the inner engine keeps the counters

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append((list(prompts), params))
        return self.inner.generate(prompts, params)

    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        self.calls.append(([prompt], params))
        return await self.inner.agenerate(prompt, params)

    async def aclose(self) -> None:
        await self.inner.aclose()


def write_problems(path: Path, n: int) -> None:
    """`n` one-step arithmetic questions with single-digit numbers: easy enough for a 135M model to
    solve sometimes, so questions get searched rather than pre-filtered out."""
    w = ShardSetWriter(path, {"data": PROBLEM_SCHEMA}, stage="bench", run_key="bench")
    for i, row in enumerate(generate_problems("arithmetic", n, 0, Knobs(max_steps=1, max_number=9))):
        w.add("data", row, i)
    w.close({})


def annotate(
    engine: Engine, problems: Path, out: Path, config: AnnotateConfig, concurrent: int, scheduler: str = "lockstep"
) -> tuple[float, int, float, Recorder]:
    rec = Recorder(engine)
    tok0 = engine.stats.generated_tokens
    t0 = time.perf_counter()
    stats = run_annotate(
        str(problems),
        {},
        out,
        rec,
        config,
        concurrent_searches=concurrent,
        max_live_searches=concurrent,
        scheduler=scheduler,
        overwrite=True,
        quiet=True,
    )
    wall = time.perf_counter() - t0
    return wall, engine.stats.generated_tokens - tok0, stats["engine busy fraction"] * wall, rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--engine", default="hf")
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--k0", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--skip-sequential", action="store_true")
    args = ap.parse_args()

    engine = make_engine(args.engine, args.model)
    tmp = Path(tempfile.mkdtemp(prefix="rsynth-bench-"))
    problems = tmp / "problems"
    write_problems(problems, args.problems)
    config = AnnotateConfig(
        omegaprm=OmegaPRMConfig(k0=args.k0, k=args.k, max_search=3, rollout_budget=args.k0 + 6 * args.k),
        params=SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0),
    )
    wall, tokens, busy, rec = annotate(engine, problems, tmp / "batched", config, args.problems)

    t0 = time.perf_counter()
    raw_tokens = sum(
        c.num_tokens for prompts, params in rec.calls for comps in engine.generate(prompts, params) for c in comps
    )
    raw_wall = time.perf_counter() - t0

    table = Table(
        title=f"annotate-prm throughput ({engine.name}, {engine.model}, {args.problems} questions, k0={args.k0}, k={args.k})"
    )
    for col in ("run", "engine calls", "tokens", "wall s", "tokens/s", "engine busy", "ratio to raw"):
        table.add_column(col, justify="right")
    raw_tps = raw_tokens / raw_wall
    table.add_row(
        "raw engine replay", str(len(rec.calls)), str(raw_tokens), f"{raw_wall:.1f}", f"{raw_tps:.1f}", "1.00", "1.00"
    )
    table.add_row(
        "annotate-prm, all questions at once (lockstep)",
        str(len(rec.calls)),
        str(tokens),
        f"{wall:.1f}",
        f"{tokens / wall:.1f}",
        f"{busy / wall:.2f}",
        f"{(tokens / wall) / raw_tps:.2f}",
    )
    a_wall, a_tokens, a_busy, a_rec = annotate(engine, problems, tmp / "async", config, args.problems, "async")
    table.add_row(
        "annotate-prm, all questions live (async)",
        str(len(a_rec.calls)),
        str(a_tokens),
        f"{a_wall:.1f}",
        f"{a_tokens / a_wall:.1f}",
        f"{a_busy / a_wall:.2f}",
        f"{(a_tokens / a_wall) / raw_tps:.2f}",
    )
    if not args.skip_sequential:
        s_wall, s_tokens, s_busy, s_rec = annotate(engine, problems, tmp / "sequential", config, 1)
        table.add_row(
            "annotate-prm, one question at a time",
            str(len(s_rec.calls)),
            str(s_tokens),
            f"{s_wall:.1f}",
            f"{s_tokens / s_wall:.1f}",
            f"{s_busy / s_wall:.2f}",
            f"{(s_tokens / s_wall) / raw_tps:.2f}",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
