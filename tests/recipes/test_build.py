"""`rsynth build` end to end on a tiny random model: every stage kind chained, skip on re-run,
re-run of what changed, kill -9 mid-stage and resume to identical rows, and the planner's flags."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rsynth.data.shards import iter_split_rows
from rsynth.recipes.adapters import STAGES
from tests.build_support import REPO, chain_recipe, rsynth, write_recipe
from tests.runner.test_one_runner import assert_on_runner


@pytest.fixture(scope="module")
def chain(tiny_model_dir, tmp_path_factory):
    """One local build of the chain recipe, shared by the checks below (a build is the slow part)."""
    tmp = tmp_path_factory.mktemp("chain")
    recipe = chain_recipe(tmp, tiny_model_dir)
    res = rsynth("build", str(recipe), "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    return recipe, tmp / "out", res


def test_every_stage_runs_and_chains(chain):
    recipe, out, res = chain
    record = json.loads((out / "build.json").read_text())
    assert record["stage_order"] == [
        "problems",
        "decontaminate",
        "solutions",
        "filter",
        "annotate-prm",
        "labels",
        "export",
        "card",
    ]
    assert all(record["stages"][s]["complete"] for s in record["stage_order"])
    assert len(list(iter_split_rows(out / "problems"))) == 6
    # decontaminate's kept/ feeds solutions: 6 problems x 2 samples
    assert len(list(iter_split_rows(out / "solutions"))) == 12
    # the random model never answers, so every pass rate is 0: all problems kept by 0:0.5
    assert {r["id"] for r in iter_split_rows(out / "filter")} == {r["id"] for r in iter_split_rows(out / "problems")}
    labels = list(iter_split_rows(out / "labels"))
    assert [r["first_error"] for r in labels] == [
        len(r["steps"]) - 1 for r in labels
    ]  # planted: the last step is wrong
    trl = [json.loads(line) for line in (out / "export" / "trl.jsonl").read_text().splitlines()]
    assert len(trl) == 6 and all(set(r) == {"prompt", "completions", "labels"} for r in trl)
    assert "load it: datasets.load_dataset('arrow'" in res.stdout


def test_every_stage_that_reads_an_input_ran_through_the_runner(chain):
    recipe, out, _ = chain
    record = json.loads((out / "build.json").read_text())
    reading = [
        s
        for s, rec in record["stages"].items()
        if STAGES[rec["kind"]].reads_input and (out / s / "manifest.json").exists()
    ]
    assert set(reading) >= {"decontaminate", "solutions", "filter", "annotate-prm", "labels"}
    for stage in reading:
        assert_on_runner(out / stage)


def test_rerun_skips_finished_stages_and_reruns_what_changed(chain):
    recipe, out, _ = chain
    res = rsynth("build", str(recipe), "--dry-run")
    assert res.returncode == 0
    assert res.stdout.count("skip") == 8 and " run " not in res.stdout
    res = rsynth("build", str(recipe), "--dry-run", "--set", "stages.labels.k=3")
    actions = _actions(res.stdout)
    assert actions == {
        "problems": "skip",
        "decontaminate": "skip",
        "solutions": "skip",
        "filter": "skip",
        "annotate-prm": "skip",
        "labels": "rerun",
        "export": "rerun",
        "card": "rerun",
    }
    res = rsynth("build", str(recipe), "--dry-run", "--from", "filter", "--until", "annotate-prm")
    assert _actions(res.stdout) == {
        "problems": "keep",
        "decontaminate": "keep",
        "solutions": "keep",
        "filter": "rerun",
        "annotate-prm": "rerun",
        "labels": "after",
        "export": "after",
        "card": "after",
    }


def _actions(table: str) -> dict[str, str]:
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if len(cells) >= 3 and cells[0] != "stage":
            out[cells[0]] = cells[2].split()[0]
    return out


def test_a_real_rerun_skips_without_loading_a_model(chain):
    recipe, out, _ = chain
    before = (out / "solutions" / "manifest.json").read_text()
    res = rsynth("build", str(recipe), "--quiet")
    assert res.returncode == 0 and "Loading weights" not in res.stderr
    assert (out / "solutions" / "manifest.json").read_text() == before


def test_demo_recipe_validates_and_plans():
    res = rsynth("build", "recipes/demo.yaml", "--dry-run", "--set", "out=/nonexistent-rsynth-demo")
    assert res.returncode == 0, res.stderr
    assert _actions(res.stdout) == {s: "run" for s in ("problems", "solutions", "annotate-prm", "export", "card")}
    for name in ("gsm8k-omegaprm", "math-omegaprm"):
        res = rsynth("build", f"recipes/{name}.yaml", "--dry-run", "--set", "out=/nonexistent-rsynth-gpu")
        assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_kill_mid_stage_and_resume_gives_identical_rows(tiny_model_dir, tmp_path, sig):
    """kill -9, or SIGTERM (exit 143 after committing what finished), then the same build resumes."""
    recipe = write_recipe(
        tmp_path / "r.yaml",
        f"""\
out: {tmp_path / "out"}
defaults: {{engine: hf, model: {tiny_model_dir}, batch-rows: 2, max-new-tokens: 16, temperature: 1.0}}
stages:
  - problems: {{template: arithmetic, n: 20, max-steps: 1}}
  - solutions: {{input: problems, n-samples: 2, shard-size: 4}}
""",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsynth", "build", str(recipe), "--quiet"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    manifest = tmp_path / "out" / "solutions" / "manifest.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and 0 < json.loads(manifest.read_text())["cursor"]:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the stage finished before it could be killed"
    proc.send_signal(sig)
    assert proc.wait() == (-sig if sig == signal.SIGKILL else 143)
    killed = json.loads(manifest.read_text())
    assert not killed["complete"] and 0 < killed["cursor"] < 20
    res = rsynth("build", str(recipe), "--dry-run")
    assert _actions(res.stdout) == {"problems": "skip", "solutions": "resume"}
    assert rsynth("build", str(recipe), "--quiet").returncode == 0
    fresh = rsynth(
        "generate",
        "solutions",
        "--input",
        str(tmp_path / "out" / "problems"),
        "--out",
        str(tmp_path / "fresh"),
        "--engine",
        "hf",
        "--model",
        tiny_model_dir,
        "--batch-rows",
        "2",
        "--max-new-tokens",
        "16",
        "--temperature",
        "1.0",
        "-n",
        "2",
        "--quiet",
    )
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert list(iter_split_rows(tmp_path / "out" / "solutions")) == list(iter_split_rows(tmp_path / "fresh"))
