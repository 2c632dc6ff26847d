"""Throughput and peak memory of `rsynth decontaminate` next to a naive pure-Python baseline.

Synthetic rows are GSM8K training problems with re-drawn numbers (so they are distinct, realistic
and clean) plus 1% copies of bundled benchmark items (exact, prefixed, truncated). Each run is a
fresh process; rows/s counts everything a user waits for after start-up: reading the JSONL, index
load, matching, writing the kept/removed/errors shards. The baseline does the same work with the
same normalisation and windows, but with Python sets of n-gram tuples, one row at a time.

    python bench/decontam_throughput.py [--rows 100000 1000000] [--naive-max 200000] [--workers 2]

`--semantic N` instead times `--semantic` on N rows of realistic maths data: GSM8K training problems
with their answers (numbers re-drawn near their size once the 7,473 are used up) plus 1% rephrased
benchmark items from tests/fixtures/decontam_probe.jsonl (maths with answers, code with programs).
By default it reports the time to the first row and a full run on a fresh cache, warm runs (baseline
code, this code, `--workers 2`, answers and programs ignored), the n-gram stages alone and the probe
(baseline, this code); naming `all` in `--runs` times embedding every row (what the gate and the lexical
screen save). Each line gives wall time, CPU time of the run and of its child processes (sandbox,
verifier, workers) and the 1-minute load average when it ended (other jobs slow the wall time), and
an estimate of rows/s on two idle cores from the CPU times (`idle_seconds`).

    python bench/decontam_throughput.py --semantic 10000

In the same run, `--baseline REF` (default: the commit before the speed work) runs this tree with
the speed files (SPEED_FILES) as they were at REF: the table gives the ratios of wall time and of
rows per CPU second, and the bench checks that every row of the N rows and of the probe lands in the
same split with the same evidence. `--runs` picks the runs (SEMANTIC_RUNS).

On a machine other jobs keep busy, run it with OMP_NUM_THREADS=1: CPU time then measures the work of
one thread. Each line also gives the forward passes' CPU time and, from it, an estimate of the idle
2-core rate with torch's default threads (the forward split over both cores: `threaded_seconds`);
`--runs threads base-threads` time that default itself (OMP_NUM_THREADS dropped for those runs).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("BENCH_CODE_ROOT", str(ROOT)))  # a child may run the baseline's code

SEEDS = Path("/work/shared/seeds/gsm8k_train.jsonl")
BENCH = ROOT / "rsynth" / "resources" / "benchmarks"


def make_input(path: Path, rows: int, seed: int = 0) -> None:
    """Write `rows` synthetic problems: 99% perturbed GSM8K-train, 1% benchmark copies."""
    rng = random.Random(seed)
    train = [json.loads(line)["question"] for line in SEEDS.open()]
    items = []
    for f in sorted(BENCH.glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            items.extend(json.loads(line)["text"] for line in fh)
    number = re.compile(r"\d+")
    with path.open("w") as out:
        for i in range(rows):
            if rng.random() < 0.01:
                t = rng.choice(items)
                t = rng.choice([t, "Question: " + t, t[: len(t) * 6 // 10] or t])
            else:
                t = number.sub(lambda m: str(rng.randint(2, 999)), rng.choice(train))
            out.write(json.dumps({"id": f"syn-{i}", "problem": t, "answer": str(rng.randint(0, 999))}) + "\n")


PROBE = ROOT / "tests" / "fixtures" / "decontam_probe.jsonl"


def make_semantic_input(path: Path, rows: int, seed: int = 0) -> None:
    """Realistic clean maths rows with their answers (GSM8K-train, numbers near their own size) + 1%
    rephrased benchmark items from the probe (maths with answers, code with solutions)."""
    rng = random.Random(seed)
    train = [json.loads(line) for line in SEEDS.open()]
    rephrased = [r for r in map(json.loads, PROBE.open()) if r["kind"] == "rephrase"]
    number = re.compile(r"\d+")
    with path.open("w") as out:
        for i in range(rows):
            if i % 100 == 50:
                r = rephrased[(i // 100) % len(rephrased)]
                row = {"problem": r["problem"], "answer": r["answer"], "solution": r["solution"]}
            else:
                t = train[i % len(train)]
                answer = t["answer"].split("####")[-1].strip()
                q = (
                    t["question"]
                    if i < len(train)
                    else number.sub(
                        lambda m: str(rng.randint(max(1, int(m.group()) // 2), max(2, int(m.group()) * 2))),
                        t["question"],
                    )
                )
                row = {"problem": q, "answer": answer, "solution": None}
            out.write(json.dumps({"id": f"syn-{i}", **row}) + "\n")


def _peak_mb() -> float:
    """Peak RSS of this process plus its largest reaped child (worker processes), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024


def child_rsynth(inp: Path, out: Path, workers: int) -> dict:
    from rsynth.decontam.params import DecontamParams
    from rsynth.decontam.pipeline import run

    start = time.perf_counter()
    report = run(str(inp), out, DecontamParams(workers=workers), overwrite=True)
    seconds = time.perf_counter() - start
    return {"rows": report["rows"], "removed": report["removed"], "seconds": seconds, "peak_mb": _peak_mb()}


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """CPU time (user + system) of this process so far: unlike wall time, it does not grow when other
    jobs compete for the cores, and a run that uses at most two threads takes no longer than it on two
    idle cores, so rows per CPU second is a lower bound of the idle 2-core rate."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child_semantic(inp: Path, out: Path, mode: str) -> dict:
    """One run; `mode` is cold (fresh cache), warm, warm2 (warm, --workers 2), noanswers (warm, answers
    and programs ignored), all (warm, embed every row) or ngram (no semantic). "forward" is the CPU time
    of the MiniLM forward passes (all of its threads)."""
    from rsynth.decontam import minilm
    from rsynth.decontam.params import DecontamParams
    from rsynth.decontam.paraphrase import SemanticConfig
    from rsynth.decontam.pipeline import run

    forward = [0.0]
    encode_ids = minilm.MiniLM._encode_ids

    def timed(self, encoded):
        begin = _cpu_seconds()
        try:
            return encode_ids(self, encoded)
        finally:
            forward[0] += _cpu_seconds() - begin

    minilm.MiniLM._encode_ids = timed
    start, cpu, kids = time.perf_counter(), _cpu_seconds(), _cpu_seconds(resource.RUSAGE_CHILDREN)
    off = {"answer_column": "none", "solution_column": "none", "tests_column": "none"} if mode == "noanswers" else {}
    report = run(
        str(inp),
        out,
        DecontamParams(semantic=mode != "ngram", workers=2 if mode == "warm2" else 1, **off),
        SemanticConfig(embed_all=mode == "all"),
        overwrite=True,
    )
    seconds = time.perf_counter() - start
    sem = report.get("semantic") or {}
    removed = report["removed_by"]
    return {
        "rows": report["rows"],
        "removed": report["removed"],
        "seconds": seconds,
        "cpu": _cpu_seconds() - cpu,
        "child_cpu": _cpu_seconds(resource.RUSAGE_CHILDREN) - kids,
        "peak_mb": _peak_mb(),
        "embedded": sem.get("embedded", 0),
        "forward": forward[0],
        "semantic_removed": sum(s.get("semantic", 0) for s in removed.values()),
    }


# The files of the speed work (issue 23): `--baseline REF` runs the current tree with these files as they
# were at REF, so that the ratio and the output check isolate them from other changes to the decisions.
# The earlier rounds: 9d4974d (before any speed work) with minilm.py and lexical.py; 756d83a (the vector memo
# in minilm.py, mechanical edits to signature.py's number parsing); this round: d40354c (packed tokens and
# kept freed memory in minilm.py, passive OpenMP waiting in semantic.py). Only files this round changed
# for speed: signature.py has since changed its rules, which the baseline must share.
SPEED_FILES = ("rsynth/decontam/minilm.py", "rsynth/decontam/semantic.py")
BASELINE_REF = "d40354c"  # main before this round of speed work


def _baseline_tree(tmp: str, ref: str) -> Path:
    """A copy of the working tree's package with SPEED_FILES as they were at `ref` (a git commit)."""
    tree = Path(tmp) / "baseline"
    shutil.copytree(ROOT / "rsynth", tree / "rsynth", ignore=shutil.ignore_patterns("__pycache__"))
    for f in SPEED_FILES:
        old = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{f}"], capture_output=True, check=True).stdout
        (tree / f).write_bytes(old)
    return tree


# name: (label, mode, input, code); the runs named in THREADED keep torch's default threads (2 on 2 cores)
# whatever OMP_NUM_THREADS the bench runs under: what a user gets with no settings
SEMANTIC_RUNS = {
    "first": ("first run on a fresh cache, 1 row (time to first row)", "cold", "one", "new"),
    "cold": ("first run on a fresh cache", "cold", "all", "new"),
    "warm": ("warm", "warm", "all", "new"),
    "base": ("warm, baseline code", "warm", "all", "base"),
    "warm2": ("warm, --workers 2", "warm2", "all", "new"),
    "threads": ("warm, torch's default threads (no OMP_NUM_THREADS)", "warm", "all", "new"),
    "base-threads": ("warm, torch's default threads, baseline code", "warm", "all", "base"),
    "noanswers": ("warm, answers and programs ignored", "noanswers", "all", "new"),
    "all": ("warm, embed every row (no gate, no lexical screen)", "all", "head", "new"),
    "ngram": ("n-gram stages only", "ngram", "all", "new"),
    "probe": ("probe (decontam_probe*.jsonl), warm", "warm", "probe", "new"),
    "probe-base": ("probe, baseline code", "warm", "probe", "base"),
}
DEFAULT_RUNS = ("first", "cold", "base", "warm", "warm2", "noanswers", "ngram", "probe-base", "probe")
TWINS = {"warm": "base", "warm2": "base", "threads": "base-threads", "probe": "probe-base"}  # run -> its baseline
THREADED = ("threads", "base-threads")


def idle_seconds(r: dict, workers: int) -> float:
    """Estimated wall time on two idle cores, from CPU times (other jobs inflate the measured wall time).
    With one worker and OMP_NUM_THREADS=1 the run is serial: its CPU plus its children's (the sandbox and
    the verifier run while it waits). With two, the parent waits while the worker processes (children,
    with their own sandbox and verifier) run side by side: the parent's CPU plus half the children's.
    It assumes balanced workers and cores with no other work; it is an estimate, not a measurement."""
    return r["cpu"] + r["child_cpu"] / (2 if workers > 1 else 1)


def threaded_seconds(r: dict) -> float:
    """Estimated wall time on two idle cores of a one-worker run with torch's default threads (two on
    two cores, what a user gets), from the CPU times of a one-thread run: serial as `idle_seconds`, but
    the forward passes (matrix products, `forward`) split over both cores. It assumes perfect scaling
    of the forward and no other work; an estimate, not a measurement."""
    return r["cpu"] + r["child_cpu"] - r.get("forward", 0.0) / 2


def _row_line(n: int, label: str, r: dict, base: dict | None, workers: int = 1, threads: bool = False) -> str:
    wall = "" if base is None else f"{base['seconds'] / r['seconds']:.2f}x"
    total = r["cpu"] + r["child_cpu"]  # the ratio counts children: --workers 2 does its work in them
    ratio = "" if base is None else f"{(base['cpu'] + base['child_cpu']) / total:.2f}x"
    serial = workers == 1 and "forward" in r and not threads
    threaded = f"{r['rows'] / threaded_seconds(r):,.0f}" if serial else ""
    return (
        f"| {n:,} | {label} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | {r['cpu']:.1f} | "
        f"{r['child_cpu']:.1f} | {r['rows'] / r['cpu']:,.0f} | {r['rows'] / total:,.0f} | "
        f"{r['rows'] / idle_seconds(r, workers):,.0f} | {threaded} | {r.get('forward', 0.0):.1f} | {wall} | {ratio} | "
        f"{r['embedded']:,} | "
        f"{r['semantic_removed']:,} | {r['peak_mb']:.0f} | {os.getloadavg()[0]:.1f} |"
    )


def semantic_table(rows: int, cache: str | None, names: list[str], ref: str) -> None:
    """The runs named (SEMANTIC_RUNS), each in a fresh process, the new code next to the baseline's
    (`_baseline_tree`) in the same bench run: ratios of wall time and of rows per CPU second, and
    whether the outputs (on the N rows and on the probe) are the same.

    With `cache` (an RSYNTH_CACHE directory already holding the reference embeddings) cold runs are
    skipped."""
    lines = [
        "| rows | run | seconds | rows/s | CPU s | child CPU s | rows per CPU s | rows per CPU s (with children) | "
        "est. rows/s, 2 idle cores | est. rows/s, 2 idle cores, torch's default threads | forward CPU s | "
        "speed-up (wall) | speed-up (rows per CPU s) | rows embedded | removed (semantic) | peak RSS (MiB) | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    checks = []
    with tempfile.TemporaryDirectory(prefix="rsynth-bench-sem-") as tmp:
        inputs = {"all": Path(tmp) / "in.jsonl", "head": Path(tmp) / "head.jsonl", "one": Path(tmp) / "one.jsonl"}
        make_semantic_input(inputs["all"], rows)
        small = min(rows, 2000)  # embedding every row is the slow baseline: time it on fewer rows
        inputs["head"].write_text("".join(line for _, line in zip(range(small), inputs["all"].open())))
        inputs["one"].write_text(next(iter(inputs["all"].open())))
        inputs["probe"] = Path(tmp) / "probe.jsonl"
        probes = sorted(PROBE.parent.glob("decontam_probe*.jsonl"))
        inputs["probe"].write_text("".join(f.read_text() for f in probes))
        counts = {k: sum(1 for _ in v.open()) for k, v in inputs.items()}
        needs_base = any(SEMANTIC_RUNS[n][3] == "base" for n in names)
        trees = {"new": ROOT, "base": _baseline_tree(tmp, ref) if needs_base else ROOT}
        warm = cache or f"{tmp}/cache-warm"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if not cache and not any(SEMANTIC_RUNS[n][1:3] == ("cold", "all") for n in names):
            os.environ["RSYNTH_CACHE"] = warm
            _spawn("semantic", str(inputs["one"]), f"{tmp}/out-warmup", "warm")  # fills the warm cache
        done: dict[str, dict] = {}
        for k, name in enumerate(names):
            label, mode, which, code = SEMANTIC_RUNS[name]
            if mode == "cold" and cache:
                continue
            # each cold run gets a fresh cache; the cold run over all rows leaves the warm cache behind
            os.environ["RSYNTH_CACHE"] = f"{tmp}/cache-{k}" if mode == "cold" and which == "one" else warm
            out = f"{tmp}/out-{name}"
            drop = ("OMP_NUM_THREADS",) if name in THREADED else ()
            done[name] = r = _spawn("semantic", str(inputs[which]), out, mode, root=trees[code], drop=drop)
            r["out"] = out
            base = done.get(TWINS.get(name, ""))
            lines.append(_row_line(counts[which], label, r, base, 2 if mode == "warm2" else 1, name in THREADED))
            print(lines[-1], flush=True)
            if base is not None:
                checks.append(f"* {label}: output vs baseline code: {compare_outputs(base['out'], out)}")
    print(
        f"\nbaseline code: this tree with {', '.join(SPEED_FILES)} as at {ref}; `uptime` load average at the end:"
        f" {os.getloadavg()[0]:.1f} (2 cores)\n\n" + "\n".join(lines) + "\n\n" + "\n".join(checks)
    )


COSINE_TOLERANCE = 1e-3  # evidence cosines may differ in float rounding (a row's pass changes the sums' order)


def _decisions(out: str) -> dict[str, dict]:
    """Per split (kept, removed, review, errors): row id (or source row) -> what was decided and why."""
    from rsynth.data.shards import read_split

    found: dict[str, dict] = {}
    for split in ("kept", "removed", "review", "errors"):
        table = read_split(out, split)
        rows = table.to_pylist() if table is not None else []
        found[split] = {
            r.get("id") or (r.get("source"), r.get("row")): r.get("contamination") if split == "removed" else r
            for r in rows
        }
    return found


def _same(a, b) -> bool:
    """Equal, except that floats named cosine/score may differ by COSINE_TOLERANCE."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= COSINE_TOLERANCE
    return a == b


def compare_outputs(base: str, new: str) -> str:
    """ "identical" when both outputs put every row in the same split with the same evidence (rule, item,
    signatures, answers, execution; cosines within COSINE_TOLERANCE), else what differs."""
    a, b = _decisions(base), _decisions(new)
    diffs = []
    for split in a:
        if a[split].keys() != b[split].keys():
            diffs.append(
                f"{split}: {len(a[split].keys() - b[split].keys())} rows left, {len(b[split].keys() - a[split].keys())} came"
            )
        bad = [k for k in a[split].keys() & b[split].keys() if not _same(a[split][k], b[split][k])]
        if bad:
            diffs.append(f"{split}: {len(bad)} rows with other evidence (e.g. {bad[0]})")
    return "identical" if not diffs else "; ".join(diffs)


def child_naive(inp: Path, out: Path, limit: int) -> dict:
    """The textbook implementation: dict of n-gram tuples -> items, per-row Python loops."""
    from rsynth.decontam.index import IndexConfig
    from rsynth.decontam.normalise import tokens
    from rsynth.decontam.references import load_references

    start = time.perf_counter()
    cfg = IndexConfig()
    grams: dict[tuple[str, ...], set[int]] = {}
    sizes: list[int] = []
    windows: list[int] = []
    for ref in load_references(["all"], [], "problem"):
        for text in ref.texts:
            toks = tokens(text)
            n = cfg.window(len(toks))
            own = {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)} if n else set()
            for g in own:
                grams.setdefault(g, set()).add(len(sizes))
            sizes.append(len(own))
            windows.append(n)
    df_ok = {g: s for g, s in grams.items() if len(s) <= cfg.max_df}
    lengths = sorted({n for n in windows if n})
    rows = removed = 0
    out.mkdir(parents=True, exist_ok=True)
    with inp.open() as fh, (out / "kept.jsonl").open("w") as kept, (out / "removed.jsonl").open("w") as rem:
        for line in fh:
            if rows >= limit:
                break
            rows += 1
            row = json.loads(line)
            toks = tokens(row["problem"])
            hits: Counter[int] = Counter()
            found: dict[int, set] = {}
            for n in lengths:
                for i in range(len(toks) - n + 1):
                    g = tuple(toks[i : i + n])
                    for item in df_ok.get(g, ()):
                        if windows[item] == n:
                            hits[item] += 1
                            found.setdefault(item, set()).add(g)
            flagged = any(
                len(found[item]) / max(sizes[item], 1) >= 0.5
                or hits[item] / max(len(toks) - windows[item] + 1, 1) >= 0.5
                for item in hits
            )
            removed += flagged
            (rem if flagged else kept).write(line)
    seconds = time.perf_counter() - start
    return {"rows": rows, "removed": removed, "seconds": seconds, "peak_mb": _peak_mb()}


def _spawn(*args: str, root: Path = ROOT, drop: tuple[str, ...] = ()) -> dict:
    """Run `--child ARGS` in a fresh process importing rsynth from `root` (the baseline tree, or this one),
    without the environment variables in `drop`."""
    env = {k: v for k, v in os.environ.items() if k not in drop} | {"BENCH_CODE_ROOT": str(root)}
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--naive-max", type=int, default=200_000, help="baseline rows per run (it is slow)")
    ap.add_argument("--semantic", type=int, metavar="N", help="time --semantic on N realistic rows instead (quick)")
    ap.add_argument("--cache", help="with --semantic: a warm RSYNTH_CACHE directory; skips the cold runs")
    ap.add_argument(
        "--runs", nargs="+", choices=sorted(SEMANTIC_RUNS), default=list(DEFAULT_RUNS), help="with --semantic"
    )
    ap.add_argument("--baseline", default=BASELINE_REF, help="with --semantic: the commit of the speed files' baseline")
    ap.add_argument("--child", nargs=4, metavar=("KIND", "INPUT", "OUT", "ARG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, inp, out, arg = args.child
        if kind == "semantic":
            print(json.dumps(child_semantic(Path(inp), Path(out), arg)))
            return
        fn = child_rsynth if kind == "rsynth" else child_naive
        print(json.dumps(fn(Path(inp), Path(out), int(arg))))
        return
    if args.semantic:
        semantic_table(args.semantic, args.cache, args.runs, args.baseline)
        return
    lines = [
        "| data rows | implementation | rows timed | seconds | rows/s | peak RSS (MiB) | removed |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="rsynth-bench-") as tmp:
        for n in args.rows:
            inp = Path(tmp) / f"in-{n}.jsonl"
            make_input(inp, n)
            runs = [
                (f"rsynth, --workers {w}", _spawn("rsynth", str(inp), f"{tmp}/out-{n}-{w}", str(w)))
                for w in sorted({1, args.workers})
            ]
            naive = _spawn("naive", str(inp), f"{tmp}/naive-{n}", str(args.naive_max))
            note = "" if naive["rows"] == n else f" (first {naive['rows']:,} rows)"
            runs.append((f"naive Python sets{note}", naive))
            for name, r in runs:
                lines.append(
                    f"| {n:,} | {name} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | {r['peak_mb']:.0f} | {r['removed']:,} |"
                )
            print("\n".join(lines[-len(runs) :]), flush=True)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
