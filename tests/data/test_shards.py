"""Schema round trip, shard/manifest consistency, and resume after `kill -9` in the middle of a shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from rsynth.data.schema import ERROR_SCHEMA, PROBLEM_SCHEMA, TRACE_SCHEMA, TREE_SCHEMA, conform, empty_labels
from rsynth.data.shards import MANIFEST, OutputConflict, ShardSetWriter, read_arrow, read_split, write_arrow
from tests.paths import REPO, TESTS

CHILD = TESTS / "shard_writer_child.py"


def trace_row(i: int, labelled: bool) -> dict:
    row = {
        "id": f"t{i}",
        "problem_id": f"p{i}",
        "domain": "math",
        "problem": "1+1?",
        "reference_answer": "2",
        "sample_index": i,
        "completion": "Step 1: 1+1=2\n\nThe answer is: 2",
        "steps": ["Step 1: 1+1=2", "The answer is: 2"],
        "final_answer": "2",
        "verdict": "correct",
        "num_tokens": 12,
        "finish_reason": "stop",
        "pass_rate": 0.5,
        "source_ref": None,
        "provenance": {
            "model": "m",
            "engine": "hf",
            "sampling": {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 64, "n": 4},
            "seed": 0,
            "rsynth_version": "0.1.0",
            "verifier": "math",
            "verifier_version": "1",
        },
        **empty_labels(),
    }
    if labelled:
        row.update(
            label_method="math_shepherd:he",
            step_mc=[1.0, 0.25],
            step_k=[4, 4],
            step_correct=[4, 1],
            step_hard=[True, True],
            step_progress=[0.5, 1.0],
            first_error=-1,
            trace_value_min=0.25,
        )
    return row


def test_schema_round_trip_keeps_types_even_for_all_null_columns(tmp_path: Path) -> None:
    """A shard of only unlabelled rows must still carry list<double> label types, not `null`."""
    rows = [trace_row(0, False), trace_row(1, True)]
    write_arrow(tmp_path / "a.arrow", rows[:1], TRACE_SCHEMA)
    write_arrow(tmp_path / "b.arrow", rows[1:], TRACE_SCHEMA)
    a, b = read_arrow(tmp_path / "a.arrow"), read_arrow(tmp_path / "b.arrow")
    assert a.schema.equals(TRACE_SCHEMA) and b.schema.equals(TRACE_SCHEMA)
    assert pa.concat_tables([a, b]).to_pylist() == rows
    for schema, row in [
        (PROBLEM_SCHEMA, {"id": "x", "gold_steps": ["a"], "extra": 1}),
        (ERROR_SCHEMA, {"source": "f", "row": 3, "reason": "r"}),
        (TREE_SCHEMA, {"trace_id": "t", "prefix_steps": [], "mc": 0.5, "k": 4}),
    ]:
        write_arrow(tmp_path / "x.arrow", [row], schema)
        back = read_arrow(tmp_path / "x.arrow").to_pylist()[0]
        assert back == conform(row, schema) and "extra" not in back
    import datasets

    ds = datasets.load_dataset(
        "arrow",
        data_files=[str(tmp_path / "a.arrow"), str(tmp_path / "b.arrow")],
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert (
        ds.features["step_mc"].feature.dtype == "float64"
        and ds[1]["step_hard"] == [True, True]
        and ds[0]["step_mc"] is None
    )


def _write(out: Path, n: int, shard_size: int, **kw) -> ShardSetWriter:
    from tests.shard_writer_child import rows_for

    w = ShardSetWriter(
        out, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="t", run_key="k", shard_size=shard_size, **kw
    )
    for i in range(w.cursor, n):
        for split, row in rows_for(i):
            w.add(split, row, i)
        w.input_done(i)
    w.close({"inputs": n})
    return w


def check_consistent(out: Path) -> dict:
    """Every visible shard loads; every manifest shard exists with the recorded row count."""
    manifest = json.loads((out / MANIFEST).read_text())
    for split, info in manifest["splits"].items():
        assert info["rows"] == sum(s["rows"] for s in info["shards"])
        for s in info["shards"]:
            assert read_arrow(out / s["file"]).num_rows == s["rows"]
        for f in (out / split).glob("*.arrow"):
            read_arrow(f)  # no visible file is partial
    return manifest


def test_shards_and_manifest(tmp_path: Path) -> None:
    _write(tmp_path, 23, 5)
    m = check_consistent(tmp_path)
    assert m["complete"] and m["cursor"] == 23 and m["stats"] == {"inputs": 23}
    assert [s["rows"] for s in m["splits"]["data"]["shards"]] == [5] * 9 + [1]
    assert m["splits"]["errors"]["rows"] == 5
    data = read_split(tmp_path).to_pylist()
    assert [r["id"] for r in data] == [f"t{i}-{j}" for i in range(23) for j in range(2)]


def test_other_run_is_refused_and_overwrite_clears(tmp_path: Path) -> None:
    _write(tmp_path, 4, 3)
    with pytest.raises(OutputConflict, match="different run"):
        ShardSetWriter(tmp_path, {"data": TRACE_SCHEMA}, stage="t", run_key="other")
    w = ShardSetWriter(
        tmp_path, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="t", run_key="other", overwrite=True
    )
    assert w.cursor == 0 and not list((tmp_path / "data").glob("*.arrow"))


def _reference(tmp_path: Path, n: int, shard_size: int) -> dict[str, list]:
    ref = tmp_path / "ref"
    _write(ref, n, shard_size)
    return {s: read_split(ref, s).to_pylist() for s in ("data", "errors")}


def _child(out: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, str(CHILD), str(out), *args], stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("mode", ["37", "midwrite:3", "midwrite:6"])
def test_kill_9_mid_shard_then_resume_is_identical(tmp_path: Path, mode: str) -> None:
    """kill -9 with a half-filled buffer or a half-written shard file: nothing partial is visible, the
    manifest is consistent, datasets loads the directory, and resuming gives the uninterrupted output."""
    n, size = 40, 7
    out = tmp_path / "out"
    proc = _child(out, str(n), str(size), mode)
    assert proc.stdout.readline().strip() == "READY"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    m = check_consistent(out)
    assert not m["complete"] and m["partial"]["data"] > 0  # killed after a checkpoint that split an input's rows
    if mode.startswith("midwrite"):
        assert list((out / "data").glob(".*.tmp")) or list((out / "errors").glob(".*.tmp"))  # the half-written file
    if m["splits"]["data"]["shards"]:
        import datasets

        ds = datasets.load_dataset(
            "arrow", data_files=str(out / "data" / "*.arrow"), split="train", cache_dir=str(tmp_path / "hf")
        )
        assert len(ds) == m["splits"]["data"]["rows"]
    resumed = _child(out, str(n), str(size))
    assert resumed.stdout.read().strip() == "DONE" and resumed.wait() == 0
    check_consistent(out)
    assert not list(out.rglob(".*.tmp"))
    ref = _reference(tmp_path, n, size)
    for split in ("data", "errors"):
        assert read_split(out, split).to_pylist() == ref[split], split
