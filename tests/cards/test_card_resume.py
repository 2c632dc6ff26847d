"""A resumed build's card equals an uninterrupted build's, byte for byte: every figure on it comes from
the rows and manifests, none from the last process. The resume is made real by damaging a labels
shard of a finished build: the next `rsynth build` resumes that stage from the checkpoint before it
(the rest of its rows from the completion cache), in a new process with its own "this run" counts."""

from __future__ import annotations

import json

import pytest

from tests.build_support import planted_traces, rsynth, write_recipe


@pytest.mark.slow  # four CLI runs loading the tiny model
def test_a_resumed_builds_card_equals_the_uninterrupted_ones(tiny_model_dir, tmp_path):
    traces = planted_traces(tmp_path / "traces.jsonl")
    out = tmp_path / "out"
    recipe = write_recipe(
        tmp_path / "r.yaml",
        f"""\
name: resume-card
out: {out}
defaults: {{engine: hf, model: {tiny_model_dir}, batch-rows: 2, max-new-tokens: 8, temperature: 1.0}}
stages:
  - annotate-prm: {{id: labels, source: {traces}, input-kind: traces, k0: 2, k: 2, shard-size: 2}}
""",
    )
    first = rsynth("build", str(recipe), "--quiet")
    assert first.returncode == 0, first.stderr[-2000:]
    assert rsynth("card", str(out), "-o", str(out / "card-a")).returncode == 0
    manifest = json.loads((out / "labels" / "manifest.json").read_text())
    shards = manifest["splits"]["data"]["shards"]
    assert len(shards) >= 2 and shards[-1]["before"]["cursor"] > 0  # a mid-run checkpoint to resume from
    damaged = out / "labels" / shards[-1]["file"]
    damaged.write_bytes(damaged.read_bytes()[:-7])

    again = rsynth("build", str(recipe), "--quiet")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"warning: {damaged} is damaged" in again.stderr and "Traceback" not in again.stderr
    record = json.loads((out / "build.json").read_text())["stages"]["labels"]
    assert record["complete"] and record["stats"]["engine prompts sent this run"] == 0  # all from the cache
    assert json.loads((out / "labels" / "manifest.json").read_text())["splits"] == manifest["splits"]
    assert rsynth("card", str(out), "-o", str(out / "card-b")).returncode == 0
    assert (out / "card-b" / "README.md").read_bytes() == (out / "card-a" / "README.md").read_bytes()
