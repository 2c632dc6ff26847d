"""Scale-out: shards 0/2 and 1/2 merged equal the unsharded run; the Ray executor gives the local rows."""

from __future__ import annotations

import importlib.util
import json

import pytest

from rsynth.data.shards import iter_split_rows
from tests.build_support import chain_recipe, rsynth

SAMPLE = [
    "--engine",
    "hf",
    "--batch-rows",
    "2",
    "--max-new-tokens",
    "8",
    "--temperature",
    "1.0",
    "-n",
    "2",
    "--quiet",
    "--shard-size",
    "3",
]


def _all(out, splits=("data", "filtered", "errors")):
    return {s: list(iter_split_rows(out, s)) for s in splits}


def test_two_shards_merged_equal_the_unsharded_run(tiny_model_dir, tmp_path):
    problems = tmp_path / "problems.jsonl"
    rows = [{"id": f"p{i}", "problem": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(7)]
    rows.insert(3, {"id": "bad", "problem": "no answer"})  # an error row keeps its place too
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = ["generate", "solutions", "--input", str(problems), "--model", tiny_model_dir, *SAMPLE]
    assert rsynth(*base, "--out", str(tmp_path / "full")).returncode == 0
    for i in (1, 0):
        res = rsynth(*base, "--out", str(tmp_path / f"s{i}"), "--num-shards", "2", "--shard-index", str(i))
        assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((tmp_path / "s1" / "partition.json").read_text()) == {
        "num_shards": 2,
        "shard_index": 1,
        "start": 4,
        "stop": 8,
        "total": 8,
    }
    res = rsynth("merge", str(tmp_path / "s1"), str(tmp_path / "s0"), "--out", str(tmp_path / "merged"))
    assert res.returncode == 0, res.stderr
    full, merged = _all(tmp_path / "full"), _all(tmp_path / "merged")
    assert len(full["data"]) == 14 and len(full["errors"]) == 1
    assert merged == full
    manifest = json.loads((tmp_path / "merged" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["stats"]["merged shards"] == 2


def test_merge_refuses_an_incomplete_set(tmp_path):
    res = rsynth(
        "generate", "problems", "--n", "5", "--out", str(tmp_path / "a"), "--num-shards", "3", "--shard-index", "0"
    )
    assert res.returncode == 0
    res = rsynth("merge", str(tmp_path / "a"), "--out", str(tmp_path / "m"))
    assert res.returncode == 2 and "expected partitions 0..2 exactly once; missing or repeated: 1, 2" in res.stderr
    res = rsynth(
        "generate", "problems", "--n", "5", "--out", str(tmp_path / "b"), "--num-shards", "2", "--shard-index", "2"
    )
    assert res.returncode == 2 and "--shard-index 2 --num-shards 2" in res.stderr


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'rsynth[ray]')")
def test_ray_executor_gives_the_local_rows(tiny_model_dir, tmp_path):
    (tmp_path / "l").mkdir()
    (tmp_path / "r").mkdir()
    local, on_ray = chain_recipe(tmp_path / "l", tiny_model_dir), chain_recipe(tmp_path / "r", tiny_model_dir)
    assert rsynth("build", str(local), "--until", "solutions", "--quiet").returncode == 0
    res = rsynth(
        "build",
        str(on_ray),
        "--until",
        "solutions",
        "--quiet",
        "--executor",
        "ray",
        "--ray-blocks",
        "3",
        "--ray-replicas",
        "2",
        "--ray-num-cpus",
        "2",
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for stage, splits in (
        ("problems", ("data",)),
        ("decontaminate", ("kept", "removed", "errors")),
        ("solutions", ("data", "filtered", "errors")),
    ):
        assert _all(tmp_path / "r" / "out" / stage, splits) == _all(tmp_path / "l" / "out" / stage, splits), stage
    assert sorted(p.name for p in (tmp_path / "r" / "out" / ".ray" / "solutions").iterdir()) == [
        "block-00000",
        "block-00001",
        "block-00002",
    ]
