"""Build `rsynth/resources/benchmarks/answer_keys.jsonl.gz` from the benchmark copies in ../shared/benchmarks:
the reference answer of each maths item, and the entry point, canonical solution and tests of each code
item, which the decontaminate stage compares a training row's own answer or program with.

    python bench/decontam_answer_keys.py [BENCHMARKS_DIR]
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUS_INPUTS = 20
OUT = ROOT / "rsynth" / "resources" / "benchmarks" / "answer_keys.jsonl.gz"


def _rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main(src: Path) -> None:
    keys = []
    for r in _rows(src / "gsm8k_test.jsonl"):
        keys.append(
            {"benchmark": "gsm8k", "id": r["id"], "answer": r["answer"].split("####")[-1].strip().replace(",", "")}
        )
    for name in ("math500", "aime24", "aime25", "amc2023"):
        for r in _rows(src / f"{name}.jsonl"):
            keys.append({"benchmark": name, "id": r["id"], "answer": str(r["answer"])})
    for r in _rows(src / "humaneval.jsonl.gz"):
        keys.append(
            {
                "benchmark": "humaneval",
                "id": r["task_id"],
                "entry_point": r["entry_point"],
                "solution": r["prompt"] + r["canonical_solution"],
                "tests": r["test"],
            }
        )
    for r in _rows(src / "mbppplus.jsonl"):
        # the base asserts are weak (three calls: `min(l)` passes Find_Min's); the base inputs plus
        # the first 20 MBPP+ inputs, with outputs recorded from the canonical solution, are not
        plus = r["plus_input"] if isinstance(r["plus_input"], list) else []
        inputs = r["base_input"] + plus[:PLUS_INPUTS]
        if len(json.dumps(inputs)) > 8000:
            inputs = r["base_input"]
        keys.append(
            {
                "benchmark": "mbppplus",
                "id": r["task_id"],
                "entry_point": r["entry_point"],
                "solution": r["canonical_solution"],
                "tests": r["assertion"],
                "inputs": inputs,
                "atol": r.get("atol") or 0,
            }
        )
    with gzip.GzipFile(OUT, "wb", mtime=0) as raw:
        raw.write("".join(json.dumps(k, ensure_ascii=False, sort_keys=True) + "\n" for k in keys).encode())
    print(f"{len(keys)} answer keys, {OUT.stat().st_size / 1024:.0f} KiB -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "benchmarks")
