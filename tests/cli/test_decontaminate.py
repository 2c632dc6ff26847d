"""`rsynth decontaminate` end to end: routing, accounting, output layout, errors, resume, workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rsynth.data.shards import read_split
from tests.paths import REPO as ROOT
from tests.paths import SEEDS

GSM8K_TRAIN = SEEDS / "gsm8k_train.jsonl"
BENCH = ROOT / "rsynth" / "resources" / "benchmarks"


def _bundled(name: str, n: int) -> list[dict]:
    import gzip

    with gzip.open(BENCH / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh)]


def _rsynth(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RSYNTH_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "rsynth", "decontaminate", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Clean GSM8K-train rows, contaminated rows from several sets, a duplicate, and bad rows.

    Returns the file and, per id, the expected split ("kept", "removed:<benchmark>:<stage>", "errors").
    """
    lines: list[str] = []
    expected: dict[str, str] = {}

    def add(row_id: str, problem, outcome: str, **extra) -> None:
        lines.append(
            json.dumps(
                {"id": row_id, "problem": problem, "answer": extra.get("answer", "42"), "meta": {"n": len(lines)}}
            )
        )
        expected[row_id] = outcome

    train = [
        json.loads(line) for _, line in zip(range(1000), GSM8K_TRAIN.open())
    ]  # > SCHEMA_ROWS: bad-newcol comes after them
    for i, row in enumerate(train):
        add(f"train-{i}", row["question"], "kept", answer=row["answer"])
    gsm, math, aime = _bundled("gsm8k", 3), _bundled("math500", 3), _bundled("aime24", 2)
    add("c-exact", gsm[0]["text"], "removed:gsm8k:exact")
    add("c-lower-nodollar", math[1]["text"].lower().replace("$", ""), "removed:math500:exact")
    add("c-prefix", "Question: " + aime[0]["text"], "removed:aime24:ngram")
    add("c-wrapped", "Please solve this.\n" + math[2]["text"] + "\nShow all steps.", "removed:math500:ngram")
    add("c-head", gsm[1]["text"][: len(gsm[1]["text"]) * 6 // 10], "removed:gsm8k:ngram")
    add("dup-exact", "  " + train[5]["question"].upper(), "removed:input:dedup-exact")
    add("dup-near", train[7]["question"].replace("?", "? Answer briefly."), "removed:input:dedup-near")
    lines.append('{"id": "bad-json", "problem": ')
    expected["bad-json"] = "errors"
    add("bad-type", ["not", "a", "string"], "errors")
    add("bad-empty", "   ", "errors")
    lines.append(json.dumps({"id": "bad-missing", "question": "no problem column", "answer": "1", "meta": {"n": 0}}))
    expected["bad-missing"] = "errors"
    lines.append(
        json.dumps(
            {"id": "bad-newcol", "problem": "A new column appears.", "answer": "1", "meta": {"n": 0}, "surprise": 1}
        )
    )
    expected["bad-newcol"] = "errors"
    path = tmp_path_factory.mktemp("input") / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, expected


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def result(dataset, cache, tmp_path_factory):
    path, _ = dataset
    out = tmp_path_factory.mktemp("out") / "run"
    proc = _rsynth("--input", str(path), "--out", str(out), "--against", "all", "--dedup", cache=cache)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def _outcomes(out: Path) -> dict[str, str]:
    seen: dict[str, str] = {}
    for row in read_split(out, "kept").to_pylist():
        assert row["id"] not in seen
        seen[row["id"]] = "kept"
    for row in read_split(out, "removed").to_pylist():
        assert row["id"] not in seen
        c = row["contamination"]
        seen[row["id"]] = f"removed:{c['benchmark']}:{c['stage']}"
    for row in read_split(out, "errors").to_pylist():
        raw_id = row["raw"].split('"id": "')[1].split('"')[0]
        assert raw_id not in seen
        seen[raw_id] = "errors"
    return seen


def test_every_row_lands_where_expected(dataset, result):
    _, expected = dataset
    out, _ = result
    assert _outcomes(out) == expected


def test_output_keeps_every_input_column(result):
    out, _ = result
    kept, removed = read_split(out, "kept"), read_split(out, "removed")
    assert kept.schema.names == ["id", "problem", "answer", "meta"]
    assert removed.schema.names == ["id", "problem", "answer", "meta", "contamination"]
    assert kept.schema.field("meta").type == pa.struct([("n", pa.int64())])
    row = next(r for r in removed.to_pylist() if r["id"] == "c-wrapped")
    c = row["contamination"]
    assert c["benchmark"] == "math500" and c["item_id"] == "math500-2" and c["stage"] == "ngram"
    assert c["score"] == 1.0 and c["span"]
    assert row["answer"] == "42" and row["meta"]["n"] > 0


def test_errors_say_why(result):
    out, _ = result
    reasons = {
        r["raw"].split('"id": "')[1].split('"')[0]: (r["row"], r["reason"])
        for r in read_split(out, "errors").to_pylist()
    }
    assert reasons["bad-json"][1].startswith("invalid JSON")
    assert reasons["bad-json"][0] == 1008  # 1-based line number in the input
    assert "must be a string, got list" in reasons["bad-type"][1]
    assert "is empty" in reasons["bad-empty"][1]
    assert "missing field" in reasons["bad-missing"][1]
    assert "'surprise'" in reasons["bad-newcol"][1]


def test_report_counts_per_benchmark_and_stage(dataset, result):
    path, expected = dataset
    out, proc = result
    report = json.loads((out / "report.json").read_text())
    assert report["rows"] == len(path.read_text().splitlines()) == len(expected)
    assert report["kept"] + report["removed"] + report["errors"] == report["rows"]
    assert report["removed_by"] == {
        "aime24": {"ngram": 1},
        "gsm8k": {"exact": 1, "ngram": 1},
        "input": {"dedup-exact": 1, "dedup-near": 1},
        "math500": {"exact": 1, "ngram": 1},
    }
    assert "dedup-near" in proc.stdout and "math500" in proc.stdout  # the rich table


def test_rerun_resumes_without_duplicating(dataset, result, cache):
    path, expected = dataset
    out, _ = result
    before = (out / "report.json").read_text()
    proc = _rsynth("--input", str(path), "--out", str(out), "--against", "all", "--dedup", cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.json").read_text() == before
    assert _outcomes(out) == expected


def test_two_workers_give_identical_shards(dataset, result, cache, tmp_path):
    path, _ = dataset
    out, _ = result
    proc = _rsynth(
        "--input",
        str(path),
        "--out",
        str(tmp_path / "w2"),
        "--against",
        "all",
        "--dedup",
        "--workers",
        "2",
        "--batch-size",
        "64",
        cache=cache,
    )
    assert proc.returncode == 0, proc.stderr
    for split in ("kept", "removed", "errors"):
        assert read_split(tmp_path / "w2", split).equals(read_split(out, split))


def test_against_file_parquet_with_bare_field(cache, tmp_path):
    ref = tmp_path / "private_eval.parquet"
    secret = "A wizard has 17 crystal owls and trades each owl for 3 silver keys. He then loses 8 keys in a storm. How many keys remain?"
    pq.write_table(
        pa.table(
            {
                "uid": ["p-1", "p-2"],
                "prompt": [secret, "Something else entirely about nine ferrets and a tunnel of length 40 meters."],
            }
        ),
        ref,
    )
    data = tmp_path / "in.jsonl"
    data.write_text(
        json.dumps({"q": "Solve: " + secret})
        + "\n"
        + json.dumps({"q": "How many legs do 4 spiders have in total?"})
        + "\n"
    )
    proc = _rsynth(
        "--input",
        str(data),
        "--out",
        str(tmp_path / "o"),
        "--against-file",
        str(ref),
        "--field",
        "prompt",
        "--field",
        "text=q",
        cache=cache,
    )
    assert proc.returncode == 0, proc.stderr
    removed = read_split(tmp_path / "o", "removed").to_pylist()
    assert [r["contamination"]["benchmark"] for r in removed] == ["private_eval"]
    assert removed[0]["contamination"]["item_id"] == "row 1"
    assert read_split(tmp_path / "o", "kept").num_rows == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "/nonexistent/x.jsonl"], "input file not found: /nonexistent/x.jsonl"),
        (["--against", "gsm9k"], "--against 'gsm9k': not a bundled benchmark"),
        (["--item-threshold", "1.5"], "--item-threshold 1.5: expected a number in (0, 1]"),
    ],
)
def test_user_mistakes_are_one_line(dataset, cache, tmp_path, args, message):
    path, _ = dataset
    base = {"--input": str(path), "--out": str(tmp_path / "o")}
    merged = dict(base, **dict(zip(args[::2], args[1::2])))
    proc = _rsynth(*[x for kv in merged.items() for x in kv], cache=cache)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines() == [f"error: {message}"]
        or message in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )
    assert "Traceback" not in proc.stderr


def test_missing_text_column_is_refused_in_one_line(dataset, cache, tmp_path):
    path, _ = dataset
    proc = _rsynth("--input", str(path), "--out", str(tmp_path / "o"), "--field", "text=NOSUCH", cache=cache)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--field text=NOSUCH: no column 'NOSUCH'" in proc.stderr
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_changed_input_is_refused_and_the_manifest_records_it(cache, tmp_path):
    """The stage runs through the executor: its manifest records the input's identity, and a re-run
    over a changed input is refused rather than answered with the old result."""
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": "a", "problem": "How many legs do 4 spiders have in total?"}) + "\n")
    out = tmp_path / "o"
    assert _rsynth("--input", str(data), "--out", str(out), "--against", "gsm8k", cache=cache).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "decontaminate" and manifest["inputs"] and manifest["complete"]
    again = _rsynth("--input", str(data), "--out", str(out), "--against", "gsm8k", cache=cache)
    assert again.returncode == 0 and "stored: rows" in again.stdout
    data.write_text(json.dumps({"id": "b", "problem": "How many wheels do 7 tricycles have?"}) + "\n")
    proc = _rsynth("--input", str(data), "--out", str(out), "--against", "gsm8k", cache=cache)
    assert proc.returncode == 2 and "input changed since" in proc.stderr and "Traceback" not in proc.stderr
