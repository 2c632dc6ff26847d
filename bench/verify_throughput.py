"""Verifier throughput, measured side by side in one run.

Prints math pairs/s on MATH-500 answers and on the slow cases (repeating decimals, rationalised
fractions, inequalities against intervals, hedged answers: 60 pairs), each against the previous
path (plain math-verify `verify`, as before issue 13) with how many verdicts each gets right;
sandboxed executions/s with 1 and 2 workers for every backend; the sandbox's per-run overhead
against a bare subprocess running the same program; and the code harness's cost (the program in
an interpreter of its own, called over a pipe) against one sandboxed interpreter running the
program and its tests together, as the harness did before (ratios, not absolute times, carry
over between machines).

    python bench/verify_throughput.py [--math-items 400] [--runs 40] [--skip-math]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.code import CodeVerifier
from rsynth.verifiers.code.sandbox import UNSAFE, Job, Sandbox, available_backends, python_executable
from rsynth.verifiers.math import MathVerifier, _exact_conflict, _latex, answer_text
from rsynth.verifiers.pool import HardTimeoutPool

MATH500 = Path("/work/shared/benchmarks/math500.jsonl")
PROGRAM = "def f(n):\n    return sum(i * i for i in range(n))\nassert f(1000) == 332833500\n"


def math_items(n: int) -> list[VerifyItem]:
    path = (
        MATH500 if MATH500.exists() else Path(__file__).resolve().parents[1] / "shared" / "benchmarks" / "math500.jsonl"
    )
    answers = [json.loads(line)["answer"] for line in path.read_text().splitlines()]
    items = []
    for i in range(n):
        answer = answers[i % len(answers)]
        items.append(VerifyItem(answer, f"so the answer is $\\boxed{{{answer}}}$" if i % 2 else answer + "+1"))
    return items


def slow_pairs() -> list[tuple[str, str, bool]]:
    """60 (reference, candidate, is it right) pairs of the kinds that were slow or misjudged:
    6 families x 10 values, all distinct (so no parse cache helps)."""
    pairs = []
    for k in range(1, 11):
        pairs += [
            (f"\\frac{{{k}}}{{99}}", f"0.\\overline{{{k:02d}}}", True),
            (f"\\frac{{1}}{{\\sqrt{{{k + 1}}}+1}}", f"\\frac{{\\sqrt{{{k + 1}}}-1}}{{{k}}}", True),
            (f"({k},\\infty)", f"x>{k}", True),
            (f"({k}, {k + 3}]", f"{k}<x\\le {k + 3}", True),
            (f"{k}", f"\\boxed{{{k + 1}}} or \\boxed{{{k}}}", False),
            (f"{k}", f"{k + 1}, {k}", False),
        ]
    return pairs


def previous_check(reference: str, candidate: str, *_: object) -> bool:
    """The path before issue 13: math-verify's parse + verify and the exact-rational check."""
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]
    gold = parse(_latex(reference), extraction_config=config, parsing_timeout=None)
    pred = parse(_latex(candidate), extraction_config=config, parsing_timeout=None)
    ok = bool(gold and pred) and verify(gold, pred, timeout_seconds=None)
    return ok and not _exact_conflict(gold[0], pred[0], percent="%" in reference + candidate)


def previous_warmup() -> None:
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    previous_check("1", "1")


def bench_math_pairs(items: list[VerifyItem], workers: int) -> tuple[float, list[bool]]:
    """(pairs/s, verdicts) of the current MathVerifier, workers started outside the timing."""
    with MathVerifier(timeout=30, workers=workers) as v:
        v.verify_batch([VerifyItem("1", "1")] * 2 * workers)
        start = time.perf_counter()
        verdicts = v.verify_batch(items)
        return len(items) / (time.perf_counter() - start), [x.ok for x in verdicts]


def bench_previous_pairs(items: list[VerifyItem], workers: int) -> tuple[float, list[bool]]:
    pool = HardTimeoutPool(previous_check, workers=workers, timeout=30, warmup=previous_warmup, memory_mb=2048)
    try:
        pool.map([("1", "1")] * 2 * workers)
        args = [(answer_text(i.reference or ""), answer_text(i.candidate or "")) for i in items]
        start = time.perf_counter()
        outcomes = pool.map(args)
        return len(items) / (time.perf_counter() - start), [o.kind == "ok" and bool(o.value) for o in outcomes]
    finally:
        pool.close()


def math_table(n: int, console: Console) -> None:
    table = Table(title="math verification, 1 worker: current path vs previous path (plain math-verify)")
    for col in ("pair set", "pairs", "current pairs/s", "previous pairs/s", "ratio", "current right", "previous right"):
        table.add_column(col, justify="left" if col == "pair set" else "right")
    mixed = math_items(n)
    sets = [
        ("MATH-500 answers (boxed self / +1)", mixed, [i % 2 == 1 for i in range(n)]),
        (
            "slow cases (repeating, rationalised, inequality, hedged)",
            [VerifyItem(r, c) for r, c, _ in slow_pairs()],
            [ok for *_, ok in slow_pairs()],
        ),
    ]
    for name, items, truth in sets:
        now, got = bench_math_pairs(items, 1)
        before, old = bench_previous_pairs(items, 1)
        right = lambda vs: f"{sum(a == b for a, b in zip(vs, truth))}/{len(truth)}"  # noqa: E731
        table.add_row(
            name, str(len(items)), f"{now:.1f}", f"{before:.1f}", f"{now / before:.2f}x", right(got), right(old)
        )
    console.print(table)


def bench_code(runs: int, workers: int, backend: str) -> float:
    verifier = CodeVerifier(timeout=10, workers=workers, sandbox=backend)
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


def harness_cases(calls: int) -> list[tuple[str, VerifyItem, str]]:
    """(name, harness item, the same program and tests as one script): one call, and `calls` io cases."""
    outputs = [sum(i * i for i in range(n)) for n in range(calls)]
    io = VerifyItem(
        json.dumps({"inputs": [[n] for n in range(calls)], "outputs": [repr(o) for o in outputs]}),
        PROGRAM,
        {"style": "io", "entry_point": "f"},
    )
    loop = f"{PROGRAM}for n, want in enumerate({outputs!r}):\n    assert f(n) == want\n"
    return [
        ("assert, 1 call", VerifyItem("assert f(10) == 285", PROGRAM), PROGRAM + "assert f(10) == 285\n"),
        (f"io, {calls} calls", io, loop),
    ]


def harness_table(runs: int, backend: str, console: Console) -> None:
    """Median ms/item of the harness against one interpreter started as before (-s: site and its
    .pth files run) and started bare (-S, as the harness starts both of its interpreters), in wall
    time and in CPU time of the whole run (all reaped descendants: supervisor, sandbox, harness,
    program). The three take turns item by item, so a load spike on a shared machine hits them
    alike; CPU time hardly depends on the load."""
    table = Table(title=f"code harness cost, sandbox={backend}, 1 worker (median of {runs} items, interleaved)")
    for col in (
        "test",
        "measure",
        "one interpreter -s",
        "one interpreter -S",
        "harness (2 interpreters -S)",
        "vs -s",
        "vs -S",
    ):
        table.add_column(col, justify="left" if col in ("test", "measure") else "right")
    verifier = CodeVerifier(timeout=10, workers=1, sandbox=backend)

    def timed(fn: Callable[[], bool]) -> tuple[float, float]:
        cpu, start = _children_cpu(), time.perf_counter()
        assert fn()
        return time.perf_counter() - start, _children_cpu() - cpu

    for name, item, script in harness_cases(200):
        times: dict[str, list[tuple[float, float]]] = {"-s": [], "-S": [], "harness": []}
        for _ in range(runs):
            times["-s"].append(timed(lambda: verifier.sandbox.run(Job({"main.py": script})).returncode == 0))
            times["-S"].append(
                timed(lambda: verifier.sandbox.run(Job({"main.py": script}, site=False)).returncode == 0)
            )
            times["harness"].append(timed(lambda: verifier.verify_batch([item])[0].status == "pass"))
        # Under bwrap the sandboxed processes' CPU time never reaches this process (they are not
        # reaped up the chain to the supervisor), so only its wall time is shown.
        for i, measure in enumerate(("wall", "CPU") if backend != "bwrap" else ("wall",)):
            med = {k: statistics.median(t[i] for t in v) for k, v in times.items()}
            table.add_row(
                name if i == 0 else "",
                measure,
                *(f"{med[k] * 1000:.1f} ms" for k in ("-s", "-S", "harness")),
                f"{med['harness'] / med['-s']:.2f}x",
                f"{med['harness'] / med['-S']:.2f}x",
            )
    console.print(table)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--math-items", type=int, default=400)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--skip-math", action="store_true", help="only the code verifier's tables")
    args = parser.parse_args()
    backends = [*available_backends(), UNSAFE]
    console = Console(width=150)
    if not args.skip_math:
        math_table(args.math_items, console)
    for backend in backends:
        harness_table(args.runs, backend, console)

    throughput = Table(title="sandboxed code verification throughput (programs/s)")
    throughput.add_column("verifier")
    throughput.add_column("1 worker", justify="right")
    throughput.add_column("2 workers", justify="right")
    throughput.add_column("2w / 1w", justify="right")
    rows = [(f"code sandbox={b} (assert test)", lambda w, b=b: bench_code(args.runs, w, b)) for b in backends]
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
