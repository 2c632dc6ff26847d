"""annotate-prm over a fleet of continuous-batching servers: routing by question against round-robin.

Simulated on a VIRTUAL clock (bench/annotate_occupancy.py's engine, one per server) while the REAL
annotate-prm runs against the fleet: run_annotate, the async scheduler with its idle-slot admission,
the real OmegaPRM searches, and the real router (rsynth.engines.routing: the fleet engine's
consistent hashing with bounded load, or round-robin).

Each server is bench/annotate_occupancy.py's `SimEngine` (capacity B sequences, decode steps of
STEP_BASE + STEP_PER_SEQ x running seconds, log-normal lengths, one prefill per request) with a
prefix cache, as vLLM's automatic prefix caching has:
- a prompt is segments: the question with its instruction (QUESTION_TOKENS) and then each step of the
  assistant prefix (STEP_TOKENS each); the cache holds segment paths, LRU, in the KV memory the
  running batch leaves free (`cache_tokens`: KV_TOKENS less B running sequences' prompt and output),
  and every finished sequence's generated tokens enter it too (they take room, never hit);
- a request's prefill costs PREFILL_PER_TOKEN x the tokens its longest cached path does not cover
  (a hit saves prefill; decode cost is unchanged);
- hit rate = hit tokens / prompt tokens (vLLM's prefix_cache_hits / prefix_cache_queries).
The servers share one clock: the server whose current decode chunk ends first advances; a request
reaching an idle server starts at once. The fleet tells the scheduler it has room when any server has
room (FleetEngine.can_start).

Per fleet size and routing: occupancy (time-averaged running sequences / (N x B)), rollouts/s,
prefix-cache hit rate, time to finish, and the speed-up over one server (target: time to finish at N
servers <= one server's / N x 1.15, so speed-up >= N / 1.15). Every run answers the same questions
with the same completions (requests are seeded from their content), so the rows must equal the
one-server run's.

Also per run: the hit rate over the trace prefix alone (the steps after the question: what only a
question's own probes share) and how many servers prefilled some request of a question.

Usage: python bench/fleet.py [--servers 1 4 16] [--questions 2048] [--capacity 128] [--kv-tokens N] [--jobs 5]
           [--routings round-robin hash]
A 16-server fleet has 2048 slots: give --questions 8192 (4x) to see it past its start and drain.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import multiprocessing
import sys
import tempfile
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotate_occupancy import (
    MEDIAN_TOKENS,
    SETTLE_PASSES,
    SIGMA,
    STEPS,
    ExactVerifier,
    SimEngine,
    SimRequest,
    write_problems,
)

from rsynth.annotators import OmegaPRMConfig
from rsynth.data.shards import read_split
from rsynth.engines.base import Completion, Engine, InFlight, Prompt, SamplingParams
from rsynth.engines.routing import Router, route_key
from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate

QUESTION_TOKENS, STEP_TOKENS = 400, 13  # a competition problem with its instruction; MEDIAN_TOKENS / STEPS per step
# The server the bench stands for: a 7B model (Qwen2.5-Math-7B: 28 layers x 4 KV heads x 128 dims, K
# and V in bf16 = 56 KiB of KV a token) on one 80 GB H100 under vLLM's --gpu-memory-utilization 0.9:
# 72 GB - 15 GB of weights - ~2 GB of activations = ~55 GB of KV blocks, about 1M tokens. vLLM keeps
# every block no running sequence holds as its prefix cache (LRU), so the cache is what the batch
# leaves free. `--kv-tokens` sets another server (the same 7B model on a 32 GB GPU: 28.8 GB - 17 GB = ~200k).
KV_TOKENS = 1_000_000
MEAN_OUTPUT = MEDIAN_TOKENS * math.exp(SIGMA**2 / 2)  # a log-normal's mean: ~165 tokens
# prefill: 2 x 7e9 FLOPs a token at ~45% of the H100's 990 bf16 TFLOP/s = ~30k prompt tokens/s, charged
# while the batch waits (vLLM's chunked prefill shares the steps instead: the same total)
PREFILL_PER_TOKEN = 1 / 30_000


def cache_tokens(kv_tokens: int, capacity: int) -> int:
    """The prefix cache of a server: its KV tokens less what B running sequences hold (each its
    question, half the steps as prefix on average, and its output)."""
    held = capacity * (QUESTION_TOKENS + STEPS * STEP_TOKENS // 2 + MEAN_OUTPUT)
    return max(0, int(kv_tokens - held))


class SimServer(SimEngine):
    """One continuous-batching server with a prefix cache, on the fleet's clock."""

    def __init__(self, name: str, capacity: int, answers: dict[str, str], fleet: SimFleet, kv_tokens: int) -> None:
        super().__init__(capacity, answers)
        self.name, self.fleet = name, fleet
        self.stats = fleet.stats  # one set of counters and one occupancy for the fleet
        self.cache: OrderedDict[object, int] = OrderedDict()
        self.cache_room, self.cached = cache_tokens(kv_tokens, capacity), 0
        self.hit_tokens = self.query_tokens = 0
        self.step_hit_tokens = self.step_query_tokens = 0  # the trace-prefix part alone (after the question)
        self.event_at, self.event_end = math.inf, 0
        self._fresh = 0

    def load(self) -> int:
        return self.running + sum(len(r.lengths) - r.admitted for r in self.waiting)

    def _remember(self, key: object, tokens: int) -> None:
        if key in self.cache:
            self.cache.move_to_end(key)
            return
        self.cache[key] = tokens
        self.cached += tokens
        while self.cached > self.cache_room:
            _, size = self.cache.popitem(last=False)
            self.cached -= size

    def _prefill(self, req: SimRequest) -> float:
        prompt: Prompt = req.prompt  # type: ignore[attr-defined]
        steps = [s for s in prompt.assistant_prefix.split("\n\n") if s]
        path: tuple = (route_key(prompt),)
        segments = [(path, QUESTION_TOKENS)]
        for step in steps:
            path = (*path, step)
            segments.append((path, STEP_TOKENS))
        total = sum(t for _, t in segments)
        hit = 0
        for key, tokens in segments:  # the longest cached path
            if key not in self.cache:
                break
            hit += tokens
        self.fleet.homes.setdefault(path[0], set()).add(self.name)
        self.step_query_tokens += total - QUESTION_TOKENS
        self.step_hit_tokens += max(0, hit - QUESTION_TOKENS)
        for key, tokens in segments:
            self._remember(key, tokens)
        self.hit_tokens += hit
        self.query_tokens += total
        return PREFILL_PER_TOKEN * (total - hit)

    def submit(self, req: SimRequest) -> None:
        self.waiting.append(req)
        if self.event_at == math.inf:  # idle: it starts now
            self.now = self.fleet.now
            self.begin()

    def begin(self) -> None:
        """Admit what fits and run decode steps up to the next sequence end."""
        self._admit()
        if not self.heap:
            self.event_at = math.inf
            return
        self.event_end = self.heap[0].end_step
        self.event_at = self.now + self._decode_time(self.event_end)

    def finish(self) -> None:
        self.now = self.event_at
        done = {id(s.request): s.request for s in self.heap if s.end_step == self.event_end}.values()
        self._finish(self.event_end)
        for r in done:
            if r.done == len(r.lengths):  # its generated tokens now take cache room
                self._fresh += 1
                self._remember(("out", self.name, self._fresh), sum(r.lengths))
        self.begin()


ROUTING_NAMES = {"hash": "by question", "round-robin": "round-robin"}


class SimFleet(Engine):
    """N simulated servers behind the real router, with the fleet engine's `can_start`."""

    name = "sim"
    request_seeded = True

    def __init__(self, servers: int, capacity: int, answers: dict[str, str], routing: str, kv_tokens: int) -> None:
        super().__init__("sim")
        self.now = 0.0
        self.stats.in_flight = InFlight(lambda: self.now)
        self.servers = [SimServer(f"s{i}", capacity, answers, self, kv_tokens) for i in range(servers)]
        self.router = Router(routing)
        self.capacity = capacity
        self.homes: dict[str, set[str]] = {}  # question key -> the servers that prefilled one of its requests
        self._driver: asyncio.Task | None = None

    @property
    def max_batch_prompts(self) -> int:
        return 1 << 20

    def _generate(self, prompts, params):  # only the async scheduler is benchmarked here
        raise NotImplementedError

    def can_start(self, sequences: int) -> bool:
        return any(s.load() + sequences <= s.capacity for s in self.servers)

    def request_slots(self) -> int:
        return sum(s.capacity for s in self.servers)  # a request takes at least one sequence slot

    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        loads = {s.name: (s.load(), s.capacity) for s in self.servers}
        server = self.servers[int(self.router.choose(route_key(prompt), loads)[1:])]  # type: ignore[index]
        future = asyncio.get_running_loop().create_future()
        req = server._request(prompt, params)
        req.prompt = prompt  # type: ignore[attr-defined]
        req.on_done = future.set_result
        server.submit(req)
        if self._driver is None or self._driver.done():
            self._driver = asyncio.get_running_loop().create_task(self._drive())
        return await future

    async def _drive(self) -> None:
        """Advance the fleet's clock one event at a time, after the scheduler reacted to the last."""
        loop = asyncio.get_running_loop()
        while True:
            await _settle(loop)
            server = min(self.servers, key=lambda s: s.event_at)
            if server.event_at == math.inf:
                return
            self.now = server.event_at
            server.finish()

    def hit_rate(self) -> float:
        query = sum(s.query_tokens for s in self.servers)
        return sum(s.hit_tokens for s in self.servers) / query if query else 0.0

    def step_hit_rate(self) -> float:
        """The hit rate over the trace prefix only (the steps after the question, which a question's
        probes share and nothing else does): what routing by question can keep and round-robin loses."""
        query = sum(s.step_query_tokens for s in self.servers)
        return sum(s.step_hit_tokens for s in self.servers) / query if query else 0.0

    def servers_per_question(self) -> float:
        return sum(len(v) for v in self.homes.values()) / len(self.homes) if self.homes else 0.0


async def _settle(loop: asyncio.AbstractEventLoop) -> None:
    """Give the scheduler up to SETTLE_PASSES event-loop turns before virtual time moves on, stopping
    early once nothing but this driver is ready to run: with an inline verifier and no I/O, a turn with
    an empty ready queue is a no-op, so the further turns would change nothing (same clock, same rows)
    and only cost CPU (they were most of a 16-server run's time)."""
    for _ in range(SETTLE_PASSES):
        await asyncio.sleep(0)
        if not loop._ready:  # type: ignore[attr-defined]  # CPython's ready queue: nothing else will run
            return


def run(
    servers: int,
    routing: str,
    capacity: int,
    problems: Path,
    answers: dict[str, str],
    out: Path,
    live: int,
    kv_tokens: int = KV_TOKENS,
) -> dict:
    fleet = SimFleet(servers, capacity, answers, routing, kv_tokens)
    config = AnnotateConfig(
        omegaprm=OmegaPRMConfig(k0=16, k=8, rollout_budget=64),
        params=SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=2048, seed=0),
    )
    t0 = time.perf_counter()
    stats = run_annotate(
        str(problems),
        {},
        out,
        fleet,
        config,
        max_live_searches=live,
        scheduler="async",
        overwrite=True,
        quiet=True,
        verifier=ExactVerifier(),
    )
    return {
        "virtual_s": fleet.now,
        "occupancy": stats["sequences in flight (mean)"] / (capacity * servers),
        "rollouts_s": stats["completions generated this run"] / fleet.now,
        "hit_rate": fleet.hit_rate(),
        "step_hit_rate": fleet.step_hit_rate(),
        "servers_per_question": fleet.servers_per_question(),
        "spilled": fleet.router.spilled,
        "live_max": stats["searches live (max)"],
        "requests": stats["rollout requests this run"],
        "real_s": time.perf_counter() - t0,
        "rows": hashlib.sha256(
            json.dumps(read_split(out, "data").to_pylist() + read_split(out, "tree").to_pylist(), default=str).encode()
        ).hexdigest(),
    }


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--questions", type=int, default=2048)
    ap.add_argument("--capacity", type=int, default=128, help="sequences a server runs at once (vLLM --max-num-seqs)")
    ap.add_argument(
        "--live", type=int, default=128, help="--max-live-searches (more go live while the fleet has idle slots)"
    )
    ap.add_argument("--kv-tokens", type=int, default=KV_TOKENS, help="KV cache tokens a server (module docstring)")
    ap.add_argument(
        "--routings",
        nargs="+",
        default=["round-robin", "hash"],
        choices=list(ROUTING_NAMES),
        help="at 2+ servers; round-robin first (the hit-rate ratios divide by it)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process (same results)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rsynth-fleet-"))
    answers = write_problems(tmp / "problems", args.questions)
    runs = [(n, routing) for n in args.servers for routing in (args.routings if n > 1 else ("hash",))]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {
            (n, routing): pool.submit(
                run,
                n,
                routing,
                args.capacity,
                tmp / "problems",
                answers,
                tmp / f"out-{n}-{routing}",
                args.live,
                args.kv_tokens,
            )
            for n, routing in runs
        }
        results = {key: f.result() for key, f in futures.items()}
    table = Table(
        title=f"annotate-prm on simulated fleets ({args.questions} questions, OmegaPRM k0=16 k=8 budget 64; "
        f"B={args.capacity} sequences a server, KV {args.kv_tokens} tokens of which the prefix cache "
        f"{cache_tokens(args.kv_tokens, args.capacity)}, prefill {1 / PREFILL_PER_TOKEN:.0f} tokens/s; "
        f"--max-live-searches {args.live}). Targets at 4+ servers: occupancy >= 0.85, hit rate >= 3x round-robin's, "
        "time to finish <= one server's / N x 1.15"
    )
    for col in (
        "servers",
        "routing",
        "occupancy",
        "rollouts/s",
        "prefix-cache hit rate",
        "hit rate / round-robin's",
        "trace-prefix hit rate",
        "trace-prefix / round-robin's",
        "servers a question (mean)",
        "time to finish (virtual s)",
        f"speed-up vs {args.servers[0]} server(s)",
        "target (N/1.15)",
        "occupancy met",
        "hit rate met",
        "time met",
        "live searches (max)",
        "spilled requests",
        "rows equal",
        "real s",
    ):
        table.add_column(col, justify="right")
    base = results[runs[0]]
    for n, routing in runs:
        r = results[n, routing]
        speed = base["virtual_s"] / r["virtual_s"]
        rr = results.get((n, "round-robin"))
        ratio = r["hit_rate"] / rr["hit_rate"] if rr and rr["hit_rate"] else None
        step_ratio = r["step_hit_rate"] / rr["step_hit_rate"] if rr and rr["step_hit_rate"] else None
        fleet = n > 1 and routing != "round-robin"
        table.add_row(
            str(n),
            ROUTING_NAMES[routing],
            f"{r['occupancy']:.2f}",
            f"{r['rollouts_s']:.0f}",
            f"{r['hit_rate']:.2f}",
            f"{ratio:.2f}x" if ratio is not None and fleet else "-",
            f"{r['step_hit_rate']:.2f}",
            f"{step_ratio:.2f}x" if step_ratio is not None and fleet else "-",
            f"{r['servers_per_question']:.1f}",
            f"{r['virtual_s']:.1f}",
            f"{speed:.2f}x",
            f"{n / 1.15:.2f}x",
            _yes(r["occupancy"] >= 0.85) if fleet else "-",
            _yes(ratio is not None and ratio >= 3) if fleet else "-",
            _yes(speed >= n / 1.15) if fleet else "-",
            str(r["live_max"]),
            str(r["spilled"]),
            _yes(r["rows"] == base["rows"]),
            f"{r['real_s']:.0f}",
        )
    Console(width=260).print(table)


if __name__ == "__main__":
    main()
