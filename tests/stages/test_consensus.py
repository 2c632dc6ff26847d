"""Consensus filtering on planted MC-vs-judge disagreements, and the judge + consensus recipe stages end
to end: OmegaPRM labels from the tiny model, a scripted judge over HTTP, the card's confusion table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsynth.data.shards import ALREADY_COMPLETE, OutputConflict, iter_split_rows
from rsynth.stages.consensus import ConsensusConfig, confusion, decide, run_consensus
from tests.build_support import planted_traces, rsynth, write_recipe
from tests.judge_support import ScriptedJudge, planted_plan
from tests.runner.test_one_runner import assert_on_runner

# (id, MC first error, judge first error, judge agreement) -> reason at tolerance 0, and at tolerance 1
PLANTED = [
    ("a", -1, -1, 1.0, "both_correct", "both_correct"),
    ("b", 2, 2, 1.0, "same_first_error", "same_first_error"),
    ("c", 2, 3, 1.0, "first_error_mismatch", "within_tolerance"),
    ("d", -1, 1, 1.0, "judge_only_error", "judge_only_error"),  # MC misses a flawed step that reached the answer
    ("e", 1, -1, 1.0, "mc_only_error", "mc_only_error"),  # an all-correct trace needs both to say -1
    ("f", 0, None, 0.0, "no_judge_verdict", "no_judge_verdict"),
    ("g", None, 0, 1.0, "no_mc_label", "no_mc_label"),
    ("h", 3, 3, 0.25, "same_first_error", "same_first_error"),
    ("i", 5, 0, 0.5, "first_error_mismatch", "first_error_mismatch"),
]
KEPT = {"both_correct", "same_first_error", "within_tolerance"}


@pytest.mark.parametrize("tid, mc, judge, agreement, exact, tolerant", PLANTED)
def test_decide(tid, mc, judge, agreement, exact, tolerant):
    assert decide(mc, judge, agreement, ConsensusConfig()) == (exact in KEPT, exact)
    assert decide(mc, judge, agreement, ConsensusConfig(tolerance=1)) == (tolerant in KEPT, tolerant)
    low = decide(mc, judge, agreement, ConsensusConfig(min_agreement=0.5))
    assert low == ((False, "low_judge_agreement") if tid == "h" else (exact in KEPT, exact))


def _judged_rows(path: Path) -> Path:
    rows = [
        {
            "id": t,
            "problem": f"problem {t}",
            "steps": ["s0", "s1", "s2", "s3", "s4", "s5"],
            "first_error": mc,
            "judge_first_error": j,
            "judge_agreement": a,
            "step_hard": [True] * 6,
        }
        for t, mc, j, a, *_ in PLANTED
    ]
    rows.append({"id": "not-judged", "problem": "p", "steps": ["s"]})  # no judge columns at all -> errors/
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("tolerance, column", [(0, 4), (1, 5)])
def test_consensus_command_routes_planted_disagreements(tmp_path, tolerance, column):
    inp = _judged_rows(tmp_path / "judged.jsonl")
    out = tmp_path / "consensus"
    res = rsynth(
        "consensus", "--input", str(inp), "--out", str(out), "--tolerance", str(tolerance), env={"COLUMNS": "200"}
    )
    assert res.returncode == 0, res.stderr
    expected = {p[0]: p[column] for p in PLANTED}
    kept = {r["id"]: r["consensus_reason"] for r in iter_split_rows(out, "data")}
    filtered = {r["id"]: r["consensus_reason"] for r in iter_split_rows(out, "filtered")}
    assert kept == {t: r for t, r in expected.items() if r in KEPT}
    assert filtered == {t: r for t, r in expected.items() if r not in KEPT}
    assert [e["reason"] for e in iter_split_rows(out, "errors")] == [
        "not a judged, MC-labelled trace (run annotate-prm, then judge)"
    ]
    stats = json.loads((out / "manifest.json").read_text())["stats"]
    assert stats["keep rate"] == pytest.approx(len(kept) / len(PLANTED))
    assert "| **-1** | 1 | 0 | 1 | 0 | 0 | 0 | 0 |" in res.stdout  # MC -1: judge -1 once (a), judge 1 once (d)


def test_confusion_counts_every_pair():
    rows = [{"first_error": mc, "judge_first_error": j} for _, mc, j, *_ in PLANTED] + [
        {"first_error": 7, "judge_first_error": 9}
    ]
    c = confusion(rows)
    assert c["traces"] == 10 and c["cells"][("5+", "5+")] == 1 and c["cells"][("5+", "0")] == 1
    assert c["cells"][("0", "none")] == 1 and c["cells"][("none", "0")] == 1
    assert c["exact agreement"] == pytest.approx(3 / 10)  # a, b, h; 7 vs 9 share the 5+ cell but disagree (issue 22)


def test_bad_tolerance_is_one_line(tmp_path):
    res = rsynth(
        "consensus",
        "--input",
        str(_judged_rows(tmp_path / "j.jsonl")),
        "--out",
        str(tmp_path / "o"),
        "--tolerance",
        "-1",
    )
    assert res.returncode == 2 and "tolerance must be >= 0" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_judge_and_consensus_recipe_stages_end_to_end(tiny_model_dir, tmp_path):
    from tests.openai_server import serve

    traces = planted_traces(tmp_path / "traces.jsonl", n=6)
    server = serve(ScriptedJudge(planted_plan), model_name="scripted")
    recipe = write_recipe(
        tmp_path / "consensus.yaml",
        f"""\
name: consensus-chain
out: {tmp_path / "out"}
defaults: {{engine: hf, model: {tiny_model_dir}, batch-rows: 2, max-new-tokens: 8, temperature: 1.0, seed: 0}}
stages:
  - annotate-prm: {{source: {traces}, input-kind: traces, k0: 2, k: 2}}
  - judge: {{input: annotate-prm, engine: openai, model: scripted, base-url: "{server.base_url}", n-judgements: 3, max-new-tokens: 64}}
  - consensus: {{input: judge}}
  - export: {{input: consensus, format: trl}}
  - card: {{}}
""",
    )
    try:
        res = rsynth("build", str(recipe), "--quiet")
        assert res.returncode == 0, res.stderr[-2000:]
        again = rsynth("build", str(recipe), "--dry-run")
        assert again.returncode == 0 and again.stdout.count("skip") == 5
    finally:
        server.stop()
    out = tmp_path / "out"
    for stage in ("annotate-prm", "judge", "consensus"):
        assert_on_runner(out / stage)
    judged = {r["id"]: r for r in iter_split_rows(out / "judge")}
    assert judged["t1"]["first_error"] == judged["t1"]["judge_first_error"] == 3  # the step stating 8 (of 4)
    assert judged["t0"]["judge_first_error"] == -1 and judged["t0"]["judge_provenance"]["model"] == "scripted"
    kept = {r["id"] for r in iter_split_rows(out / "consensus")}
    filtered = {r["id"]: r["consensus_reason"] for r in iter_split_rows(out / "consensus", "filtered")}
    assert kept == {"t1", "t2", "t4", "t5"} and filtered == {"t0": "mc_only_error", "t3": "mc_only_error"}
    trl = (out / "export" / "trl.jsonl").read_text().splitlines()
    assert len(trl) == 4
    card = (out / "README.md").read_text()
    assert "## MC vs judge first errors (consensus)" in card and "keep rate 0.667" in card
    assert "Judge: scripted (openai, processbench-critic prompt, n=3)." in card
    assert "config_name: consensus\n" in card


def test_consensus_recipe_validates_and_takes_the_judge_model():
    res = rsynth(
        "build",
        "recipes/math-omegaprm-consensus.yaml",
        "--dry-run",
        "--set",
        "out=/nonexistent-rsynth-consensus",
        "--set",
        "stages.judge.model=Qwen/QwQ-32B",
    )
    assert res.returncode == 0, res.stderr
    for stage in ("annotate-prm", "judge", "consensus", "export", "card"):
        assert stage in res.stdout
    res = rsynth("build", "recipes/math-omegaprm-consensus.yaml", "--dry-run", "--set", "stages.judge.n-judgments=4")
    assert res.returncode == 2 and "did you mean 'n-judgements'" in res.stderr


def test_consensus_changed_input_is_refused_and_a_rerun_reports_stored_figures(tmp_path):
    """consensus runs through the stage runner: its manifest records the input, an untouched re-run is
    "already complete" with stored figures, and a changed input is refused in one line (exit 2)."""
    inp = _judged_rows(tmp_path / "judged.jsonl")
    out = tmp_path / "consensus"
    first = run_consensus(str(inp), out, ConsensusConfig())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"] and manifest["stage"] == "consensus"
    again = run_consensus(str(inp), out, ConsensusConfig())
    assert again["note"] == ALREADY_COMPLETE and again["stored: kept (data/)"] == first["kept (data/)"]
    inp.write_text(inp.read_text().replace('"first_error": 2', '"first_error": 3', 1))
    with pytest.raises(OutputConflict, match="input changed since"):
        run_consensus(str(inp), out, ConsensusConfig())
    res = rsynth("consensus", "--input", str(inp), "--out", str(out))
    assert res.returncode == 2 and "input changed since" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_consensus_takes_limit(tmp_path):
    out = tmp_path / "consensus"
    stats = run_consensus(str(_judged_rows(tmp_path / "judged.jsonl")), out, ConsensusConfig(), limit=3)
    assert stats["input rows"] == 3 and stats["kept (data/)"] + stats["filtered (filtered/)"] == 3
