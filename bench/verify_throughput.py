"""Verifier throughput, measured side by side in one run.

Prints math verifications/s and sandboxed executions/s with 1 and 2 workers, and the sandbox's
per-run overhead against a bare subprocess running the same program (ratios, not absolute times,
are what carry over between machines).

    python bench/verify_throughput.py [--math-items 400] [--runs 60]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.code import CodeVerifier
from rsynth.verifiers.math import MathVerifier
from rsynth.verifiers.sandbox import Job, Sandbox, python_executable

MATH500 = Path("/work/shared/benchmarks/math500.jsonl")
PROGRAM = "def f(n):\n    return sum(i * i for i in range(n))\nassert f(1000) == 332833500\n"


def math_items(n: int) -> list[VerifyItem]:
    path = MATH500 if MATH500.exists() else Path(__file__).resolve().parents[1] / "shared" / "benchmarks" / "math500.jsonl"
    answers = [json.loads(line)["answer"] for line in path.read_text().splitlines()]
    items = []
    for i in range(n):
        answer = answers[i % len(answers)]
        items.append(VerifyItem(answer, f"so the answer is $\\boxed{{{answer}}}$" if i % 2 else answer + "+1"))
    return items


def bench_math(n: int, workers: int) -> float:
    items = math_items(n)
    with MathVerifier(timeout=10, workers=workers) as v:
        v.verify_batch(items[: 2 * workers])  # start the workers outside the timing
        start = time.perf_counter()
        v.verify_batch(items)
        return n / (time.perf_counter() - start)


def bench_code(runs: int, workers: int, backend: str) -> float:
    verifier = CodeVerifier(timeout=10, workers=workers, backend=backend)
    items = [VerifyItem("assert f(10) == 285", PROGRAM)] * runs
    start = time.perf_counter()
    verdicts = verifier.verify_batch(items)
    elapsed = time.perf_counter() - start
    assert all(v.status == "pass" for v in verdicts), verdicts[0]
    return runs / elapsed


def per_run_seconds(runs: int, backend: str | None) -> float:
    """Mean wall time of one run of PROGRAM: bare `python file.py`, or through a sandbox backend."""
    if backend is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "main.py"
            path.write_text(PROGRAM)
            start = time.perf_counter()
            for _ in range(runs):
                subprocess.run([python_executable(), "-s", str(path)], check=True, cwd=tmp)
            return (time.perf_counter() - start) / runs
    sandbox = Sandbox(backend=backend)
    start = time.perf_counter()
    for _ in range(runs):
        result = sandbox.run(Job({"main.py": PROGRAM}))
        assert result.returncode == 0, result.stderr
    return (time.perf_counter() - start) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--math-items", type=int, default=400)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    backends = ["rlimit"] + (["bwrap"] if Sandbox().backend == "bwrap" else [])
    console = Console()

    throughput = Table(title="verifier throughput (items/s)")
    throughput.add_column("verifier")
    throughput.add_column("1 worker", justify="right")
    throughput.add_column("2 workers", justify="right")
    throughput.add_column("2w / 1w", justify="right")
    rows = [("math (math-verify, MATH-500 answers)", lambda w: bench_math(args.math_items, w))]
    rows += [(f"code sandbox={b} (assert test)", lambda w, b=b: bench_code(args.runs, w, b)) for b in backends]
    for name, fn in rows:
        one, two = fn(1), fn(2)
        throughput.add_row(name, f"{one:.1f}", f"{two:.1f}", f"{two / one:.2f}x")
    console.print(throughput)

    overhead = Table(title=f"sandbox per-run overhead vs a bare subprocess ({args.runs} sequential runs each)")
    overhead.add_column("runner")
    overhead.add_column("ms / run", justify="right")
    overhead.add_column("ratio vs bare", justify="right")
    bare = per_run_seconds(args.runs, None)
    overhead.add_row("bare subprocess (python file.py)", f"{bare * 1000:.1f}", "1.00x")
    for backend in backends:
        t = per_run_seconds(args.runs, backend)
        overhead.add_row(f"sandbox {backend}", f"{t * 1000:.1f}", f"{t / bare:.2f}x")
    console.print(overhead)
    console.print(f"python {sys.version.split()[0]}; sandbox backends measured: {', '.join(backends)}")


if __name__ == "__main__":
    main()
