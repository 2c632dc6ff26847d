"""annotate-prm end to end on a real (tiny) transformers model: planted first errors, resume after
kill -9 with identical output and no engine call for cached rollouts, exports and eval-labels.
Every annotate-prm run here is checked under both schedulers (`--scheduler lockstep|async`)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

from rsynth.data.formats import processbench_scores
from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA
from rsynth.data.shards import ShardSetWriter, iter_split_rows, read_split
from tests.build_support import planted_traces as shared_planted_traces
from tests.paths import BENCHMARKS

PB = BENCHMARKS / "processbench_gsm8k.json"


def planted_traces(path: Path, n: int = 6) -> list[dict]:
    """build_support's planted traces (right answer in step 1, wrong one in the last step) plus one
    row without an answer, which must land in the errors split."""
    shared_planted_traces(path, n)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows.append({"id": "bad", "problem": "no answer column"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


SCHEDULERS = pytest.mark.parametrize("scheduler", ["lockstep", "async"])


def annotate_cmd(model: str, inp: Path, out: Path, *extra: str, scheduler: str = "lockstep") -> list[str]:
    return [
        sys.executable,
        "-m",
        "rsynth",
        "annotate-prm",
        "--input",
        str(inp),
        "--out",
        str(out),
        "--model",
        model,
        "--engine",
        "hf",
        "--k",
        "2",
        "--max-new-tokens",
        "8",
        "--concurrent-searches",
        "2",
        "--max-live-searches",
        "2",
        "--scheduler",
        scheduler,
        "--quiet",
        *extra,
    ]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def cache_count(out: Path) -> int:
    db = out / "cache.sqlite"
    if not db.exists():
        return 0
    try:
        return sqlite3.connect(str(db)).execute("SELECT count(*) FROM completions").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@SCHEDULERS
def test_planted_first_errors_found_with_real_engine(tiny_model_dir, tmp_path, scheduler):
    inp = tmp_path / "traces.jsonl"
    rows = planted_traces(inp)
    out = tmp_path / "out"
    res = run(annotate_cmd(tiny_model_dir, inp, out, scheduler=scheduler))
    assert res.returncode == 0, res.stderr
    data = {r["id"]: r for r in iter_split_rows(out, "data")}
    assert set(data) == {r["id"] for r in rows if "steps" in r}
    for r in rows[:-1]:
        got = data[r["id"]]
        assert got["first_error"] == len(r["steps"]) - 1
        assert got["step_hard"] == [True] * (len(r["steps"]) - 1) + [False]
        assert got["verdict"] == "incorrect"
    errors = list(iter_split_rows(out, "errors"))
    assert len(errors) == 1 and "missing field answer" in errors[0]["reason"] and errors[0]["row"] == len(rows)
    questions = list(iter_split_rows(out, "questions"))
    assert len(questions) == len(rows) - 1 and all(q["outcome"] == "labelled" for q in questions)
    tree = datasets.load_dataset("arrow", data_files=str(out / "tree" / "*.arrow"), split="train")
    assert tree.num_rows > 0 and set(tree.column_names) >= {"question", "prefix_steps", "mc", "visits"}


@pytest.mark.parametrize(
    ("scheduler", "sig"), [("lockstep", signal.SIGKILL), ("async", signal.SIGKILL), ("async", signal.SIGTERM)]
)
def test_kill_and_resume_gives_identical_output_without_resampling(tiny_model_dir, tmp_path, scheduler, sig):
    """kill -9 of the process group, or SIGTERM to the run (it commits what finished and exits 143)."""
    inp = tmp_path / "traces.jsonl"
    planted_traces(inp, n=10)
    full = tmp_path / "full"
    res = run(annotate_cmd(tiny_model_dir, inp, full, "--method", "math-shepherd", "--n", "3", scheduler=scheduler))
    assert res.returncode == 0, res.stderr
    total = cache_count(full)

    out = tmp_path / "killed"
    cmd = annotate_cmd(tiny_model_dir, inp, out, "--method", "math-shepherd", "--n", "3", scheduler=scheduler)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while cache_count(out) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if sig == signal.SIGKILL:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    assert proc.wait() == (-sig if sig == signal.SIGKILL else 143)
    at_kill = cache_count(out)
    assert 0 < at_kill < total, "the kill should land mid-run"
    for f in (out / "data").glob("*"):
        assert not f.name.startswith("."), "no temporary shard may remain visible as data"

    res = run(cmd)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    sent = manifest["stats"]["engine prompts sent this run"]
    assert sent == total - at_kill  # every cached rollout was served from disk, nothing twice
    assert read_split(out, "data").to_pylist() == read_split(full, "data").to_pylist()
    assert read_split(out, "tree").to_pylist() == read_split(full, "tree").to_pylist()

    res = run(cmd)  # a finished run is not redone
    assert res.returncode == 0 and "already complete" in res.stdout


@SCHEDULERS
def test_export_shapes(tiny_model_dir, tmp_path, scheduler):
    inp = tmp_path / "traces.jsonl"
    rows = planted_traces(inp, n=3)
    out = tmp_path / "out"
    assert run(annotate_cmd(tiny_model_dir, inp, out, scheduler=scheduler)).returncode == 0
    trl = tmp_path / "trl.jsonl"
    res = run([sys.executable, "-m", "rsynth", "export", "--input", str(out), "--out", str(trl), "--format", "trl"])
    assert res.returncode == 0, res.stderr
    ds = datasets.load_dataset("json", data_files=str(trl), split="train")
    assert ds.column_names == ["prompt", "completions", "labels"]
    first = ds[0]
    assert isinstance(first["prompt"], str) and all(isinstance(x, bool) for x in first["labels"])
    assert len(first["completions"]) == len(first["labels"]) and first["labels"][-1] is False

    ms = tmp_path / "ms.jsonl"
    assert (
        run(
            [
                sys.executable,
                "-m",
                "rsynth",
                "export",
                "--input",
                str(out),
                "--out",
                str(ms),
                "--format",
                "math-shepherd",
            ]
        ).returncode
        == 0
    )
    row = json.loads(ms.read_text().splitlines()[0])
    assert set(row) == {"input", "label", "task"}
    steps = rows[0]["steps"]
    assert row["input"] == rows[0]["problem"] + " " + "\n".join(f"{s} ки" for s in steps)
    signs = ["+"] * (len(steps) - 1) + ["-"]  # the planted error is the last step
    assert row["label"] == rows[0]["problem"] + " " + "\n".join(f"{s} {g}" for s, g in zip(steps, signs))

    res = run(
        [
            sys.executable,
            "-m",
            "rsynth",
            "export",
            "--input",
            str(out),
            "--out",
            str(tmp_path / "x.jsonl"),
            "--format",
            "trl",
            "--label",
            "soft",
        ]
    )
    assert res.returncode == 2 and "int()" in res.stderr and "Traceback" not in res.stderr
    soft = tmp_path / "soft.jsonl"
    soft_cmd = [
        sys.executable,
        "-m",
        "rsynth",
        "export",
        "--input",
        str(out),
        "--out",
        str(soft),
        "--format",
        "jsonl",
        "--label",
        "soft",
    ]
    res = run(soft_cmd)  # unestimated steps: refused by default, never filled in (issue 22)
    assert res.returncode == 2 and "has no MC estimate" in res.stderr
    assert run([*soft_cmd, "--unestimated", "mask"]).returncode == 0
    labels = json.loads(soft.read_text().splitlines()[0])["labels"]
    assert all(x is None or isinstance(x, float) for x in labels) and isinstance(labels[-1], float)


def test_eval_labels_matches_hand_computed_example(tmp_path):
    gold = json.loads(PB.read_text())
    erroneous = [g for g in gold if g["label"] != -1][:3]
    correct = [g for g in gold if g["label"] == -1][:2]
    subset = erroneous + correct
    gold_file = tmp_path / "gold.json"
    gold_file.write_text(json.dumps(subset))
    # erroneous: two exact hits and one off by one; correct: one hit (-1) and one false alarm (0)
    preds = {
        erroneous[0]["id"]: erroneous[0]["label"],
        erroneous[1]["id"]: erroneous[1]["label"],
        erroneous[2]["id"]: erroneous[2]["label"] + 1,
        correct[0]["id"]: -1,
        correct[1]["id"]: 0,
    }
    pred_dir = tmp_path / "pred"
    w = ShardSetWriter(pred_dir, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="test", run_key="k")
    for i, (pid, fe) in enumerate(preds.items()):
        w.add("data", {"id": pid, "first_error": fe}, i)
    w.close({})
    scores = processbench_scores(preds, subset)
    assert scores["accuracy (erroneous)"] == pytest.approx(2 / 3)
    assert scores["accuracy (correct)"] == pytest.approx(1 / 2)
    assert scores["F1"] == pytest.approx(4 / 7)
    res = run([sys.executable, "-m", "rsynth", "eval-labels", "--pred", str(pred_dir), "--gold", str(gold_file)])
    assert res.returncode == 0, res.stderr
    assert "0.571" in res.stdout and "0.667" in res.stdout


def test_import_processbench_joins_gsm8k_answers(tmp_path):
    out = tmp_path / "pb"
    answers = PB.parent / "gsm8k_test.jsonl"
    res = run(
        [
            sys.executable,
            "-m",
            "rsynth",
            "import",
            "processbench",
            str(PB),
            "--answers",
            str(answers),
            "--out",
            str(out),
        ]
    )
    assert res.returncode == 0, res.stderr
    rows = read_split(out, "data").to_pylist()
    assert len(rows) == 400 and all(r["reference_answer"] for r in rows)
    first = rows[0]
    assert first["id"] == "gsm8k-0" and first["verdict"] == "incorrect" and len(first["steps"]) > 1


def test_foreign_out_refused_before_the_model_loads(tmp_path):
    """A --out holding another command's output is refused in one line before any model is loaded:
    the model path here does not exist, so a load attempt would fail with a different error."""
    problems = tmp_path / "problems"
    res = run([sys.executable, "-m", "rsynth", "generate", "problems", "--n", "2", "--out", str(problems)])
    assert res.returncode == 0, res.stderr
    res = run(annotate_cmd(str(tmp_path / "no-such-model"), problems, problems))
    assert res.returncode == 2 and "holds output of a different run (generate-problems)" in res.stderr
    assert "Traceback" not in res.stderr
