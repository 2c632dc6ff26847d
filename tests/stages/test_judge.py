"""`rsynth judge`: the ProcessBench critic prompt, verdict parsing and the vote; the stage on the real
tiny model (whose verdicts never parse, so nothing may pass as "no error") and on a scripted judge
served over HTTP; a hand-computed ProcessBench F1 from `eval-labels`; resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsynth.annotators.judge import critic_prompt, majority_vote, parse_first_error
from rsynth.data.shards import ALREADY_COMPLETE, OutputConflict, iter_split_rows, read_split
from rsynth.engines.base import SamplingParams
from rsynth.errors import UserError
from rsynth.stages.judge import JudgeConfig, run_judge
from tests.build_support import planted_traces, rsynth
from tests.judge_support import ScriptedJudge, planted_plan, read_critic_prompt
from tests.paths import BENCHMARKS, REPO

PB = BENCHMARKS / "processbench_gsm8k.json"


def test_prompt_tags_steps_by_index_and_asks_for_a_boxed_index():
    text = critic_prompt("What is {x}?", ["First, 2.", "Then {3}."])
    assert "[Math Problem]\n\nWhat is {x}?\n\n[Solution]\n\n" in text
    assert "<paragraph_0>\nFirst, 2.\n</paragraph_0>\n\n<paragraph_1>\nThen {3}.\n</paragraph_1>" in text
    assert text.endswith("Please put your final answer (i.e., the index) in \\boxed{}.")
    assert read_critic_prompt(text) == ("What is {x}?", ["First, 2.", "Then {3}."])


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("The error is in paragraph 1. \\boxed{1}", 1),
        ("All fine: \\boxed{-1}", -1),
        ("\\boxed{3} ... on reflection \\boxed{ 0 }", 0),  # the last box counts
        ("$\\boxed{paragraph_2}$", 2),
        ("\\boxed{4}", None),  # no step 4 in a 4-step trace
        ("\\boxed{-2}", None),
        ("\\boxed{1+1}", None),  # never evaluated
        ("\\boxed{}", None),
        ("The earliest error is paragraph 2.", None),  # no box: unparseable, not "no error"
        ("", None),
    ],
)
def test_parse_first_error(reply, expected):
    assert parse_first_error(reply, 4) == expected


def test_vote_majority_ties_and_unparseable():
    v = majority_vote([2, 2, 1, None])
    assert (v.first_error, v.agreement, v.unparsed) == (2, 0.5, 1)
    assert majority_vote([-1, 3]).first_error == 3  # a tie with "no error" goes to the error claim
    assert majority_vote([4, 1, -1]).first_error == 1  # ties between errors: the earliest
    assert majority_vote([-1, -1, 0]).first_error == -1
    none = majority_vote([None, None])
    assert (none.first_error, none.agreement, none.unparsed) == (None, 0.0, 2)


def test_config_refuses_identical_greedy_judgements():
    with pytest.raises(UserError, match="temperature"):
        JudgeConfig(n_judgements=4, sampling=SamplingParams(temperature=0.0))


def test_real_tiny_model_verdicts_are_unparsed_never_no_error(tiny_engine, tmp_path):
    """The random tiny model writes no \\boxed{}: every trace must land in unparsed/, none counted -1."""
    inp = planted_traces(tmp_path / "traces.jsonl", n=4)
    with open(inp, "a") as fh:
        fh.write(json.dumps({"id": "bad", "problem": "no steps column"}) + "\n")
    out = tmp_path / "judged"
    config = JudgeConfig(n_judgements=2, batch=2, sampling=SamplingParams(temperature=1.0, max_new_tokens=6))
    stats = run_judge(str(inp), {}, out, tiny_engine, config, quiet=True)
    assert stats["judged traces (data/)"] == 0 and stats["no parseable judgement (unparsed/)"] == 4
    assert stats["bad input rows (errors/)"] == 1 and stats["judgements this run"] == 8
    for row in iter_split_rows(out, "unparsed"):
        assert row["judge_first_error"] is None and row["judge_votes"] == [None, None] and row["judge_unparsed"] == 2
        assert len(row["judge_critiques"]) == 2 and row["judge_provenance"]["template"] == "processbench-critic"
        assert row["judge_provenance"]["sampling"]["n"] == 2


def test_scripted_judge_rows_carry_votes_and_mc_labels(tmp_path):
    """Judged rows keep the input trace's columns (here MC labels) next to the judge's verdicts."""
    inp = planted_traces(tmp_path / "traces.jsonl", n=3)
    rows = [json.loads(line) for line in inp.read_text().splitlines()]
    inp.write_text("".join(json.dumps({**r, "first_error": len(r["steps"]) - 1}) + "\n" for r in rows))
    out = tmp_path / "judged"
    stats = run_judge(
        str(inp),
        {},
        out,
        ScriptedJudge(planted_plan),
        JudgeConfig(n_judgements=3, sampling=SamplingParams(temperature=0.7)),
        quiet=True,
    )
    assert stats["judged traces (data/)"] == 3
    got = {r["id"]: r for r in iter_split_rows(out, "data")}
    assert got["t0"]["judge_first_error"] == -1 and got["t0"]["judge_votes"] == [
        -1,
        -1,
        -1,
    ]  # variant 0: planted disagreement
    assert got["t1"]["judge_first_error"] == 3 == got["t1"]["first_error"] and got["t1"]["judge_agreement"] == 1.0
    assert got["t1"]["judge_provenance"]["model"] == "scripted"


# ProcessBench items and the scripted verdicts of 3 judgements each; the vote and the score by hand:
PB_PLAN = {
    "gsm8k-0": [1, 1, 0],  # label 1 -> 1: hit
    "gsm8k-1": [2, 2, 1],  # label 1 -> 2: miss
    "gsm8k-2": [None, None, None],  # label 1 -> unparsed/: no prediction, a miss (never -1)
    "gsm8k-3": [2, -1, None],  # label 2 -> tie 2 vs -1 goes to the error claim, 2: hit
    "gsm8k-200": [-1, -1, 3],  # label -1 -> -1: hit
    "gsm8k-201": [-1, 0, None],  # label -1 -> tie goes to 0: miss
    "gsm8k-202": [-1, -1, 5],  # label -1, 2 steps: 5 is out of range (unparseable) -> -1: hit
}
# erroneous: 2 of 4 = 0.5; correct: 2 of 3 = 0.667; F1 = 2 * 0.5 * 2/3 / (0.5 + 2/3) = 4/7 = 0.571


@pytest.fixture()
def pb_subset(tmp_path) -> Path:
    items = [g for g in json.loads(PB.read_text()) if g["id"] in PB_PLAN]
    assert len(items) == len(PB_PLAN)
    path = tmp_path / "pb_subset.json"
    path.write_text(json.dumps(items))
    return path


def test_scripted_judge_reproduces_hand_computed_processbench_f1(pb_subset, tmp_path):
    from tests.openai_server import serve

    by_problem = {g["problem"]: PB_PLAN[g["id"]] for g in json.loads(pb_subset.read_text())}
    server = serve(ScriptedJudge(lambda problem, steps: by_problem[problem]), model_name="scripted")
    try:
        pb = tmp_path / "pb"
        res = rsynth("import", "processbench", str(pb_subset), "--out", str(pb))
        assert res.returncode == 0, res.stderr
        judged = tmp_path / "judged"
        res = rsynth(
            "judge",
            "--input",
            str(pb),
            "--out",
            str(judged),
            "--engine",
            "openai",
            "--model",
            "scripted",
            "--base-url",
            server.base_url,
            "--n-judgements",
            "3",
            "--temperature",
            "0.7",
            "--quiet",
        )
        assert res.returncode == 0, res.stderr
    finally:
        server.stop()
    assert {r["id"] for r in iter_split_rows(judged, "unparsed")} == {"gsm8k-2"}
    votes = {r["id"]: r["judge_votes"] for r in iter_split_rows(judged, "data")}
    assert votes["gsm8k-202"] == [-1, -1, None] and votes["gsm8k-3"] == [2, -1, None]
    res = rsynth(
        "eval-labels", "--pred", str(judged), "--gold", str(pb_subset), "--reading", "lenient", env={"COLUMNS": "200"}
    )
    assert res.returncode == 0, res.stderr
    assert "judge labels" in res.stdout and "LENIENT" in res.stdout
    table = {
        cells[0]: cells[1]
        for line in res.stdout.splitlines()
        if len(cells := [c.strip() for c in line.split("│") if c.strip()]) == 2
    }
    assert (
        table["accuracy (erroneous)"] == "0.500" and table["accuracy (correct)"] == "0.667" and table["F1"] == "0.571"
    )
    assert table["missing predictions"] == "1"
    # the default is ProcessBench's own reading: the vote is Counter.most_common, whose tie goes to the
    # first critique's answer (gsm8k-201: -1, a hit) and an out-of-range index is a prediction (202: -1 wins)
    res = rsynth("eval-labels", "--pred", str(judged), "--gold", str(pb_subset), env={"COLUMNS": "200"})
    assert res.returncode == 0 and "official ProcessBench reading" in res.stdout, res.stderr
    table = {
        cells[0]: cells[1]
        for line in res.stdout.splitlines()
        if len(cells := [c.strip() for c in line.split("│") if c.strip()]) == 2
    }
    assert (
        table["accuracy (erroneous)"] == "0.500" and table["accuracy (correct)"] == "1.000" and table["F1"] == "0.667"
    )
    res = rsynth("eval-labels", "--pred", str(judged), "--gold", str(pb_subset), "--label-source", "mc")
    assert res.returncode == 0 and "mc labels" in res.stdout  # imported items carry no MC labels: all missing
    res = rsynth("eval-labels", "--pred", str(judged), "--gold", str(pb_subset), "--label-source", "gold")
    assert res.returncode == 2 and "--label-source 'gold'" in res.stderr and "Traceback" not in res.stderr


def _cache_count(out: Path) -> int:
    try:
        return sqlite3.connect(str(out / "cache.sqlite")).execute("SELECT count(*) FROM completions").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_kill_and_resume_gives_identical_output_without_rejudging(tiny_model_dir, tmp_path):
    inp = planted_traces(tmp_path / "traces.jsonl", n=24)

    def cmd(out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "rsynth",
            "judge",
            "--input",
            str(inp),
            "--out",
            str(out),
            "--model",
            tiny_model_dir,
            "--engine",
            "hf",
            "--n-judgements",
            "2",
            "--temperature",
            "1.0",
            "--max-new-tokens",
            "12",
            "--batch",
            "1",
            "--quiet",
        ]

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    full = tmp_path / "full"
    assert subprocess.run(cmd(full), capture_output=True, env=env, timeout=600).returncode == 0
    total = _cache_count(full)
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    deadline = time.time() + 300
    while _cache_count(out) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = _cache_count(out)
    assert 0 < at_kill < total, "the kill should land mid-run"
    res = subprocess.run(cmd(out), capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    stats = json.loads((out / "manifest.json").read_text())["stats"]
    assert stats["engine prompts sent this run"] == total - at_kill  # cached judgements are not re-sampled
    for split in ("data", "unparsed"):
        a, b = read_split(out, split), read_split(full, split)
        assert (a.to_pylist() if a else []) == (b.to_pylist() if b else [])
    res = subprocess.run(cmd(out), capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0 and "already complete" in res.stdout


def test_judge_changed_input_is_refused_and_a_rerun_reports_stored_figures(tmp_path):
    """judge runs through the stage runner: input identity recorded, changed input refused, stored figures."""
    inp = planted_traces(tmp_path / "traces.jsonl", n=3)
    out = tmp_path / "judged"
    config = JudgeConfig(n_judgements=3, sampling=SamplingParams(temperature=0.7))
    first = run_judge(str(inp), {}, out, ScriptedJudge(planted_plan), config, quiet=True)
    assert json.loads((out / "manifest.json").read_text())["inputs"]
    again = run_judge(str(inp), {}, out, ScriptedJudge(planted_plan), config, quiet=True)
    assert (
        again["note"] == ALREADY_COMPLETE
        and again["stored: judged traces (data/)"] == first["judged traces (data/)"] == 3
    )
    assert again["engine prompts sent this run"] == 0
    with inp.open("a") as f:
        f.write(inp.read_text().splitlines()[0] + "\n")
    with pytest.raises(OutputConflict, match="input changed since"):
        run_judge(str(inp), {}, out, ScriptedJudge(planted_plan), config, quiet=True)


def test_judge_field_naming_a_missing_column_is_one_line(tmp_path):
    inp = planted_traces(tmp_path / "traces.jsonl", n=2)
    res = rsynth("judge", "--input", str(inp), "--out", str(tmp_path / "o"), "--field", "problem=NOSUCH", "--dry-run")
    assert res.returncode == 2 and "NOSUCH" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
