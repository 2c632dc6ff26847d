"""rsynth's math verifier against plain math-verify, in one run: agreement and pairs/s.

Tables (each pair has a known right verdict):
- MATH-500 answers: every reference against itself in a sentence with a box (right) and against
  itself + 1 (wrong), 1,000 pairs;
- the class table (`tests/verifiers/math_cases.py` CLASS_TABLE: plain-text numbers, relations,
  degrees, E-notation, complex forms, bases, mixed numbers, absolute values, choice letters...),
  reported as the rows tuned on and the held-out rows apart;
- the free-text table (FREE_TEXT: whole model outputs: boxed, the Minerva closing line, chat tails,
  prose), tuned and held out apart;
- optionally Math-Verify's own test tables (`--mv-tests DIR`, a checkout's `tests/`): the rows
  whose label plain math-verify reproduces under default settings, as the issue counted them.

"plain math-verify" is `verify(parse(gold), parse(pred))` with default settings, in this process
(its `parse_expr` runs on these trusted tables only). rsynth runs through `MathVerifier` (1 worker).
Throughput on MATH-500 answers is also measured for the verifier at git ref `--base` (default
`main`), loaded from `git show` into a temporary directory, in the same run, alternating runs.

    python bench/verify_agreement.py [--base main] [--repeats 2] [--mv-tests DIR]
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rsynth.verifiers.base import VerifyItem  # noqa: E402
from rsynth.verifiers.math import MathVerifier  # noqa: E402
from tests.verifiers.math_cases import CLASS_TABLE, FREE_TEXT, Case  # noqa: E402

Pair = tuple[str, str, bool]  # reference, candidate, right verdict


def math500_pairs() -> list[Pair]:
    path = ROOT / "shared" / "benchmarks" / "math500.jsonl"
    path = path if path.exists() else ROOT.parent / "shared" / "benchmarks" / "math500.jsonl"
    answers = [json.loads(line)["answer"] for line in path.read_text().splitlines()]
    pairs: list[Pair] = []
    for a in answers:
        pairs += [(a, f"So the answer is $\\boxed{{{a}}}$.", True), (a, a + "+1", False)]
    return pairs


def mv_test_pairs(tests_dir: Path) -> list[Pair]:
    """(gold, pred, expected) rows of Math-Verify's parametrized tests whose label plain default
    math-verify reproduces (the others depend on non-default settings)."""
    pairs = []
    for path in sorted(tests_dir.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or getattr(node.func, "attr", "") != "parametrize" or len(node.args) < 2:
                continue
            try:
                names, values = ast.literal_eval(node.args[0]), ast.literal_eval(node.args[1])
            except ValueError:
                continue
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
            if "gold" not in names or "pred" not in names:
                continue
            label = next((n for n in ("expected", "expected_result") if n in names), None)
            for row in values:
                d = dict(zip(names, row))
                if label and isinstance(d["gold"], str) and isinstance(d["pred"], str):
                    pairs.append((d["gold"], d["pred"], bool(d[label])))
    return [p for p in pairs if plain_math_verify(p[0], p[1]) == p[2]]


def plain_math_verify(gold: str, pred: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(gold, parsing_timeout=None), parse(pred, parsing_timeout=None), timeout_seconds=None))
    except Exception:  # noqa: BLE001 - a crash is a refusal, as math-verify's own wrapper treats it
        return False


def timed(fn: Callable[[], list[bool]]) -> tuple[float, list[bool]]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run_verifier(cls: type, pairs: Sequence[Pair]) -> tuple[float, list[bool]]:
    """(seconds, verdicts) of a MathVerifier class with 1 worker, started outside the timing."""
    with cls(timeout=30, workers=1) as v:
        v.verify_batch([VerifyItem("1", "1")])
        return timed(lambda: [x.ok for x in v.verify_batch([VerifyItem(r, c) for r, c, _ in pairs])])


def load_base(ref: str, tmp: Path) -> type:
    """MathVerifier as it is at git ref `ref` (its math.py and answers.py), as an importable module."""
    pkg = tmp / "rsynth_base_math"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    answers = subprocess.run(
        ["git", "show", f"{ref}:rsynth/answers.py"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    math = subprocess.run(
        ["git", "show", f"{ref}:rsynth/verifiers/math.py"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    (pkg / "answers.py").write_text(answers.stdout)
    (pkg / "math.py").write_text(
        math.stdout.replace("from rsynth.answers import", "from rsynth_base_math.answers import")
    )
    sys.path.insert(0, str(tmp))  # spawned workers get the parent's sys.path
    return importlib.import_module("rsynth_base_math.math").MathVerifier


def agreement_row(name: str, pairs: Sequence[Pair], rsynth: list[bool], seconds: float) -> list[str]:
    start = time.perf_counter()
    plain = [plain_math_verify(r, c) for r, c, _ in pairs]
    plain_s = time.perf_counter() - start
    truth = [p[2] for p in pairs]
    rs_right = sum(a == t for a, t in zip(rsynth, truth))
    mv_right = sum(a == t for a, t in zip(plain, truth))
    mv_right_rs_wrong = sum(m == t != a for a, m, t in zip(rsynth, plain, truth))
    false_accepts = sum(a and not t for a, t in zip(rsynth, truth))
    n = len(pairs)
    return [
        name,
        str(n),
        f"{rs_right}/{n}",
        f"{mv_right}/{n}",
        f"{sum(a == m for a, m in zip(rsynth, plain))}/{n}",
        str(mv_right_rs_wrong),
        str(false_accepts),
        f"{n / seconds:.1f}",
        f"{n / plain_s:.1f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="main", help="git ref whose verifier's MATH-500 throughput is the baseline")
    ap.add_argument("--repeats", type=int, default=2, help="alternating timed runs of each verifier on MATH-500")
    ap.add_argument("--mv-tests", type=Path, default=None, help="a Math-Verify checkout's tests/ directory")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    console = Console(width=200)

    tables: list[tuple[str, list[Pair]]] = [("MATH-500 answers", math500_pairs())]
    for name, cases in (("class table", CLASS_TABLE), ("free text", FREE_TEXT)):
        for held in (False, True):
            rows: list[Case] = [c for c in cases if c.held == held]
            tables.append(
                (f"{name} ({'held out' if held else 'tuned'})", [(c.reference, c.candidate, c.equal) for c in rows])
            )
    if args.mv_tests:
        tables.append(("Math-Verify tests (default-label rows)", mv_test_pairs(args.mv_tests)))

    agree = Table(title="math verification: rsynth vs plain math-verify (right = matches the known verdict)")
    for col in (
        "table",
        "pairs",
        "rsynth right",
        "math-verify right",
        "same verdict",
        "mv right, rsynth wrong",
        "rsynth false accepts",
        "rsynth pairs/s",
        "math-verify pairs/s",
    ):
        agree.add_column(col)
    for name, pairs in tables:
        seconds, verdicts = run_verifier(MathVerifier, pairs)
        agree.add_row(*agreement_row(name, pairs, verdicts, seconds))
    console.print(agree)

    pairs = tables[0][1]
    with tempfile.TemporaryDirectory() as tmp:
        base = load_base(args.base, Path(tmp))
        times: dict[str, list[float]] = {"this tree": [], args.base: []}
        right: dict[str, int] = {}
        for _ in range(args.repeats):
            for label, cls in (("this tree", MathVerifier), (args.base, base)):
                seconds, verdicts = run_verifier(cls, pairs)
                times[label].append(seconds)
                right[label] = sum(v == p[2] for v, p in zip(verdicts, pairs))
    speed = Table(title=f"MATH-500 answers, 1 worker: this tree vs {args.base} (best of {args.repeats})")
    for col in ("verifier", "pairs/s", "right", "relative"):
        speed.add_column(col)
    best = {k: len(pairs) / min(v) for k, v in times.items()}
    for label in times:
        speed.add_row(
            label, f"{best[label]:.1f}", f"{right[label]}/{len(pairs)}", f"{best[label] / best[args.base]:.2f}"
        )
    console.print(speed)


if __name__ == "__main__":
    main()
