"""`eval-labels` says what it measures (issue 22): on ProcessBench GSM8K given traces it reports the
items labelled without rollouts and their share of each accuracy; `--require-rollouts` scores only
labels backed by estimates."""

from __future__ import annotations

import json

import pytest

from bench.label_quality import label_items
from rsynth.annotators.omegaprm import OmegaPRMConfig
from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA
from rsynth.data.shards import ShardSetWriter
from tests.build_support import rsynth
from tests.paths import BENCHMARKS


def table(stdout: str) -> dict[str, str]:
    return {
        c[0]: c[1] for line in stdout.splitlines() if len(c := [x.strip() for x in line.split("│") if x.strip()]) == 2
    }


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """40 ProcessBench GSM8K items labelled by OmegaPRM in given mode, as annotate-prm writes them."""
    every = json.loads((BENCHMARKS / "processbench_gsm8k.json").read_text())
    items = [g for g in every if g["label"] != -1][:20] + [g for g in every if g["label"] == -1][:20]
    rows = label_items(items, 0.8, 0.0, "step", OmegaPRMConfig(), seed=0)
    tmp = tmp_path_factory.mktemp("eval-rollouts")
    w = ShardSetWriter(tmp / "pred", {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="annotate-prm", run_key="k")
    for i, r in enumerate(rows):
        w.add("data", r, i)
    w.close({})
    gold = tmp / "gold.json"
    gold.write_text(json.dumps(items))
    return items, rows, tmp / "pred", gold


def test_eval_labels_reports_items_labelled_without_rollouts(labelled):
    items, rows, pred, gold = labelled
    correct = [it for it in items if it["label"] == -1]
    bare = {r["id"] for r in rows if all(m is None for m in r["step_mc"][:-1]) and len(r["steps"]) > 1}
    assert (
        correct and {it["id"] for it in correct if len(it["steps"]) > 1} <= bare
    )  # given mode: no rollouts on right traces
    res = rsynth("eval-labels", "--pred", str(pred), "--gold", str(gold), env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    t = table(res.stdout)
    assert t["accuracy (correct)"] == "1.000"
    assert t["correct items labelled without rollouts"] == str(sum(it["id"] in bare for it in correct))
    assert float(t["share of accuracy (correct) from them"]) == pytest.approx(
        sum(it["id"] in bare for it in correct) / len(correct), abs=1e-3
    )
    assert t["erroneous items labelled without rollouts"] == str(
        sum(it["id"] in bare for it in items if it["label"] != -1)
    )


def test_require_rollouts_scores_only_labels_backed_by_estimates(labelled):
    items, rows, pred, gold = labelled
    res = rsynth("eval-labels", "--pred", str(pred), "--gold", str(gold), "--require-rollouts", env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    t = table(res.stdout)
    bare = {r["id"] for r in rows if all(m is None for m in r["step_mc"][:-1]) and len(r["steps"]) > 1}
    kept = [it for it in items if it["id"] not in bare]
    assert t["items left out (label without rollouts, or no prediction)"] == str(len(items) - len(kept))
    assert t["correct items"] == str(sum(it["label"] == -1 for it in kept))
    assert t["erroneous items"] == str(sum(it["label"] != -1 for it in kept))
    assert "rollout-backed only" in res.stdout
