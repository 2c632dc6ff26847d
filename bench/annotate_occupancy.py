"""How full annotate-prm keeps a continuous-batching engine, lock-step against async, on a simulated GPU.

A CPU cannot show this (the hf engine is itself lock-step), so the engine is simulated on a VIRTUAL
clock while the REAL annotate-prm runs against it: run_annotate, both schedulers, the real OmegaPRM
searches, the math checker's step splitting and answer extraction, the shard writer.

The simulated engine (`SimEngine`) behaves like vLLM's scheduler:
- capacity B sequences; a request (prompt, n) is n sequences (vLLM V1 fans n out into child
  requests), admitted first come first served as slots free up;
- every decode step emits one token for every running sequence and takes
  STEP_BASE + STEP_PER_SEQ x (running sequences) seconds; admitting a request costs PREFILL seconds
  (one prefill per request: prefix caching shares it among its n samples);
- each sequence's length is log-normal (median MEDIAN_TOKENS, sigma SIGMA), capped at max_new_tokens,
  so a few rollouts are very long; a request returns when its longest sequence ends;
- completions are text: "Step j: ..." paragraphs, a planted "oops" step in a wrong solution, and a
  final "The answer is: X"; a rollout from a prefix without an "oops" is right with probability
  P_RIGHT, from one with it with probability P_LUCKY. Every request is seeded from its own content,
  like vllm/openai, so both schedulers see identical completions and write identical rows.
- verification is exact string match (an `inline` verifier): verification time is not simulated.

Virtual time only advances when the event loop has nothing else to do, so the time a scheduler
spends between engine events is free here (on a real GPU it is small next to a decode step).
Occupancy = time-averaged running sequences / B. Starved share = the share of the time to finish
with free slots and nothing queued: the scheduler had no request to give. OmegaPRM's bisection is
sequential (one k-request per search) and a request returns with its LONGEST sample, so a live
search fills about k x mean/max-of-k slots (~4 of 16 here); once every question is live (async with
--max-live-searches >= questions) starvation is the run's own drain, which more questions fix.

Rows per B: lock-step; async with exactly --max-live-searches live (an engine that cannot tell its
idle slots); async as shipped (more questions go live while `can_start` reports idle slots); and
async with --prefetch (likely next requests sent into idle slots once every question is live).
"useful occupancy" counts only completions a search used.

Usage: python bench/annotate_occupancy.py [--questions 256] [--capacity 256 1024] [--live 256]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import math
import random
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsynth.annotators import OmegaPRMConfig  # noqa: E402
from rsynth.data.schema import PROBLEM_SCHEMA  # noqa: E402
from rsynth.data.shards import ShardSetWriter, read_split  # noqa: E402
from rsynth.engines.base import Completion, Engine, InFlight, Prompt, SamplingParams, prompt_seed  # noqa: E402
from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate  # noqa: E402
from rsynth.stages.problem import DEFAULT_INSTRUCTION  # noqa: E402
from rsynth.synth.templates import Knobs, generate_problems  # noqa: E402
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem  # noqa: E402

STEP_BASE, STEP_PER_SEQ, PREFILL = 0.012, 0.00004, 0.004  # seconds
MEDIAN_TOKENS, SIGMA = 100, 1.0
STEPS, P_RIGHT, P_LUCKY = 8, 0.6, 0.05
SETTLE_PASSES = 64  # event-loop turns given to the scheduler before virtual time moves on


@dataclass
class SimRequest:
    lengths: list[int]
    texts: list[str]
    admitted: int = 0
    done: int = 0
    on_done: object = None  # callable(list[Completion])


@dataclass(order=True)
class _Seq:
    end_step: int
    order: int
    request: SimRequest = field(compare=False)


class SimEngine(Engine):
    """A continuous-batching engine on a virtual clock, with the sync (lock-step) and async paths."""

    name = "sim"
    request_seeded = True

    def __init__(self, capacity: int, answers: dict[str, str], tells_slots: bool = True) -> None:
        super().__init__("sim")
        self.capacity, self.answers, self.tells_slots = capacity, answers, tells_slots
        self.now, self.step_no, self.running = 0.0, 0, 0
        self.waiting: deque[SimRequest] = deque()
        self.heap: list[_Seq] = []
        self._order = 0
        self._driver: asyncio.Task | None = None
        self.starved_s = 0.0  # time with free slots and nothing queued to fill them
        self.stats.in_flight = InFlight(lambda: self.now)

    @property
    def max_batch_prompts(self) -> int:
        return 1 << 20

    # -- what a request returns (pure in prompt and params) -------------------------------------
    def _request(self, prompt: Prompt, params: SamplingParams) -> SimRequest:
        rng = random.Random(prompt_seed(params.seed, prompt))
        answer = self.answers[prompt.messages[-1][1]]
        done = prompt.assistant_prefix.count("\n\n")  # the prefix ends with a blank line per step
        clean = "oops" not in prompt.assistant_prefix
        rest = max(STEPS - done, 1)
        lengths, texts = [], []
        for _ in range(params.n):
            right = rng.random() < (P_RIGHT if clean else P_LUCKY)
            wrong_at = rng.randrange(rest) if clean and not right else None
            steps = [f"Step {done + j + 1}: " + ("oops, a slip" if j == wrong_at else "fine") for j in range(rest)]
            steps[-1] += f". The answer is: {answer if right else answer + '1'}"
            texts.append("\n\n".join(steps))
            tokens = int(MEDIAN_TOKENS * math.exp(rng.gauss(0.0, SIGMA)) * rest / STEPS) + 1
            lengths.append(min(tokens, params.max_new_tokens))
        return SimRequest(lengths, texts)

    # -- the continuous-batching core -----------------------------------------------------------
    def _admit(self) -> None:
        while self.waiting and self.running < self.capacity:
            req = self.waiting[0]
            if req.admitted == 0:
                self.now += self._prefill(req)  # once per request: its samples share the prompt's prefill
            take = min(len(req.lengths) - req.admitted, self.capacity - self.running)
            for n in req.lengths[req.admitted : req.admitted + take]:
                self._order += 1
                heapq.heappush(self.heap, _Seq(self.step_no + n, self._order, req))
            req.admitted += take
            self.running += take
            self.stats.in_flight.change(take)
            if req.admitted == len(req.lengths):
                self.waiting.popleft()

    def _prefill(self, req: SimRequest) -> float:
        """Seconds to admit a request (bench/fleet.py's servers charge only what their prefix cache misses)."""
        return PREFILL

    def _decode_time(self, end: int) -> float:
        """Seconds of decode steps from now to step `end` with the sequences running now."""
        return (end - self.step_no) * (STEP_BASE + STEP_PER_SEQ * self.running)

    def _advance(self) -> None:
        """Admit what fits, then decode up to the next sequence end and finish what ends there."""
        self._admit()
        if not self.heap:
            return
        end = self.heap[0].end_step
        dt = self._decode_time(end)
        self.now += dt
        if not self.waiting and self.running < self.capacity:
            self.starved_s += dt
        self._finish(end)

    def _finish(self, end: int) -> None:
        """Step `end` reached: its sequences end, and requests whose last sequence ended return."""
        self.step_no = end
        while self.heap and self.heap[0].end_step == end:
            seq = heapq.heappop(self.heap)
            self.running -= 1
            self.stats.in_flight.change(-1)
            seq.request.done += 1
            if seq.request.done == len(seq.request.lengths):
                r = seq.request
                comps = [Completion(t, n, "length" if n >= 2048 else "stop") for t, n in zip(r.texts, r.lengths)]
                self.count([comps])
                r.on_done(comps)

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        results: list[list[Completion] | None] = [None] * len(prompts)
        for i, p in enumerate(prompts):
            req = self._request(p, params)
            req.on_done = lambda comps, i=i: results.__setitem__(i, comps)
            self.waiting.append(req)
        while any(r is None for r in results):
            self._advance()
        return results  # type: ignore[return-value]

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return self._generate(prompts, params)  # occupancy is the simulator's own, in virtual time

    def can_start(self, sequences: int) -> bool:
        """Free slots for `sequences` beyond everything running and queued (vLLM: max_num_seqs)."""
        queued = sum(len(r.lengths) - r.admitted for r in self.waiting)
        return self.tells_slots and self.running + queued + sequences <= self.capacity

    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        future = asyncio.get_running_loop().create_future()
        req = self._request(prompt, params)
        req.on_done = future.set_result
        self.waiting.append(req)
        if self._driver is None or self._driver.done():
            self._driver = asyncio.get_running_loop().create_task(self._drive())
        return await future

    async def _drive(self) -> None:
        """Advance virtual time one event at a time, after the scheduler has reacted to the last one."""
        while True:
            for _ in range(SETTLE_PASSES):
                await asyncio.sleep(0)
            if not self.waiting and not self.heap:
                return
            self._advance()


class ExactVerifier(Verifier):
    name, version, inline = "exact", "1", True

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        return [
            Verdict("correct" if it.candidate == it.reference else "incorrect", it.candidate == it.reference)
            for it in items
        ]


def write_problems(path: Path, n: int) -> dict[str, str]:
    w = ShardSetWriter(path, {"data": PROBLEM_SCHEMA}, stage="bench", run_key="bench")
    answers = {}
    for i, row in enumerate(generate_problems("mixed", n, 0, Knobs(max_steps=2, max_number=20))):
        w.add("data", row, i)
        answers[DEFAULT_INSTRUCTION.format(problem=row["problem"])] = row["reference_answer"]
    w.close({})
    return answers


def run(
    capacity: int,
    scheduler: str,
    problems: Path,
    answers: dict[str, str],
    out: Path,
    live: int,
    batch: int,
    prefetch: bool = False,
    tells_slots: bool = True,
) -> dict:
    engine = SimEngine(capacity, answers, tells_slots)
    config = AnnotateConfig(
        omegaprm=OmegaPRMConfig(), params=SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=2048, seed=0)
    )
    t0 = time.perf_counter()
    stats = run_annotate(
        str(problems),
        {},
        out,
        engine,
        config,
        concurrent_searches=batch,
        max_live_searches=live,
        scheduler=scheduler,
        overwrite=True,
        quiet=True,
        verifier=ExactVerifier(),
        prefetch=prefetch,
    )
    occ = stats["sequences in flight (mean)"] / capacity
    return {
        "virtual_s": engine.now,
        "occupancy": occ,
        "p10": stats["sequences in flight (p10)"] / capacity,
        "completions": stats["completions generated this run"],
        "used": stats["completions generated this run"] - stats.get("prefetched completions unused", 0),
        "real_s": time.perf_counter() - t0,
        "starved": engine.starved_s / engine.now,
        "rows": read_split(out, "data").to_pylist() + read_split(out, "tree").to_pylist(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=256)
    ap.add_argument("--capacity", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--live", type=int, default=256, help="async: --max-live-searches")
    ap.add_argument("--batch", type=int, default=64, help="lockstep: --concurrent-searches")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rsynth-occupancy-"))
    answers = write_problems(tmp / "problems", args.questions)
    table = Table(
        title=f"annotate-prm on a simulated continuous-batching engine ({args.questions} questions, OmegaPRM "
        f"k0=32 k=16 budget 200; lockstep --concurrent-searches {args.batch}, async --max-live-searches {args.live})"
    )
    for col in (
        "B",
        "scheduler",
        "occupancy (mean)",
        "useful occupancy",
        "occupancy (p10)",
        "time to finish (virtual s)",
        "speed-up",
        "starved share",
        "completions paid",
        "of them used",
        "rows equal",
    ):
        table.add_column(col, justify="right")
    for cap in args.capacity:
        lock = run(cap, "lockstep", tmp / "problems", answers, tmp / f"lock-{cap}", args.live, args.batch)
        runs = [("lockstep", lock)]
        variants = (("async, max-live only", False, False), ("async", False, True), ("async --prefetch", True, True))
        for name, prefetch, slots in variants:
            runs.append(
                (
                    name,
                    run(
                        cap,
                        "async",
                        tmp / "problems",
                        answers,
                        tmp / f"async-{cap}-{prefetch}-{slots}",
                        args.live,
                        args.batch,
                        prefetch,
                        slots,
                    ),
                )
            )
        for name, r in runs:
            table.add_row(
                str(cap),
                name,
                f"{r['occupancy']:.2f}",
                f"{r['occupancy'] * r['used'] / r['completions']:.2f}",
                f"{r['p10']:.2f}",
                f"{r['virtual_s']:.0f}",
                f"{lock['virtual_s'] / r['virtual_s']:.2f}x",
                f"{r['starved']:.2f}",
                str(r["completions"]),
                str(r["used"]),
                "yes" if r["rows"] == lock["rows"] else "NO",
            )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
