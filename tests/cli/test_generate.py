"""`rsynth generate ...` through the real CLI (`python -m rsynth` in a subprocess) with the tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsynth.answers import DEFAULT_ANSWER_FALLBACK
from rsynth.data.shards import MANIFEST, read_arrow, read_split
from rsynth.stages.problem import final_answer
from rsynth.steps import split_steps

VALID = [
    {
        "question": f"Tom has {i} apples and buys {i + 1} more. How many apples does he have?",
        "answer": str(2 * i + 1),
        "id": f"p{i}",
    }
    for i in range(6)
]
LINES = [
    json.dumps(VALID[0]),
    json.dumps(VALID[1]),
    '{"question": "broken',
    json.dumps(VALID[2]),
    json.dumps(["not", "an", "object"]),
    json.dumps({"question": "no answer here", "id": "x1"}),
    json.dumps({"question": ["a", "list"], "answer": "1", "id": "x2"}),
    json.dumps(VALID[3]),
    json.dumps(VALID[4]),
    json.dumps(VALID[5]),
]
BAD_LINES = {3: "invalid JSON", 5: "expected a JSON object", 6: "missing field answer", 7: "must be a string"}


def rsynth(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rsynth", *args], env=env, capture_output=True, text=True, timeout=300, **kw
    )


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Non-zero exit, no traceback, and a single non-empty stderr line naming the problem."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture()
def problems_file(tmp_path: Path) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return path


def solutions_args(inp: Path | str, out: Path, model: str, *extra: str) -> list[str]:
    return [
        "generate",
        "solutions",
        "--input",
        str(inp),
        "--out",
        str(out),
        "--model",
        model,
        "--field",
        "problem=question",
        "--n-samples",
        "2",
        "--max-new-tokens",
        "16",
        "--temperature",
        "1.0",
        "--top-p",
        "1.0",
        "--batch-rows",
        "4",
        "--seed",
        "3",
        "--quiet",
        *extra,
    ]


def load_arrow_dir(path: Path, cache: Path):
    import datasets

    return datasets.load_dataset("arrow", data_files=str(path / "*.arrow"), split="train", cache_dir=str(cache))


def test_missing_input_fails_at_once(tmp_path: Path, cli_env: dict[str, str]) -> None:
    missing = tmp_path / "nope" / "problems.jsonl"
    proc = rsynth(solutions_args(missing, tmp_path / "out", "/no/such/model"), cli_env)
    one_line_error(proc, "input file not found", str(missing))
    assert proc.returncode == 2 and not (tmp_path / "out").exists()


def test_unreadable_inputs_fail_with_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "bad.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    (tmp_path / "empty").mkdir()
    for inp in (tmp_path / "bad.jsonl.gz", tmp_path / "empty"):
        proc = rsynth(solutions_args(inp, tmp_path / "out", "/no/such/model", "--dry-run"), cli_env)
        one_line_error(proc, str(inp))


def test_hub_id_offline_is_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = rsynth(
        solutions_args("no-such-org/no-such-set:test", tmp_path / "out", "/no/such/model", "--dry-run"), cli_env
    )
    one_line_error(proc, "no-such-org/no-such-set")


def test_dry_run_plans_without_loading_a_model(tmp_path: Path, problems_file: Path, cli_env: dict[str, str]) -> None:
    proc = rsynth(solutions_args(problems_file, tmp_path / "out", "/no/such/model", "--dry-run"), cli_env)
    assert proc.returncode == 0, proc.stderr
    plan = dict(_table_rows(proc.stdout))
    first_bad = plan.pop("first bad row")
    assert plan == {"valid problems": "6", "bad rows (→ errors/)": "4", "samples to draw": "12"}
    assert first_bad.startswith("row 3: invalid JSON")
    assert not (tmp_path / "out").exists()
    proc = rsynth(
        solutions_args(problems_file, tmp_path / "out", "/no/such/model", "--dry-run", "--limit", "4"), cli_env
    )
    assert dict(_table_rows(proc.stdout))["valid problems"] == "3"


def _table_rows(stdout: str) -> list[tuple[str, str]]:
    """(metric, value) pairs of a rich summary table."""
    rows = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) == 2 and cells[0] and cells[0] != "metric":
            rows.append((cells[0], cells[1]))
    return rows


def test_solutions_end_to_end(
    tmp_path: Path, problems_file: Path, tiny_model_dir: str, cli_env: dict[str, str]
) -> None:
    out = tmp_path / "out"
    proc = rsynth(solutions_args(problems_file, out, tiny_model_dir), cli_env)
    assert proc.returncode == 0, proc.stderr
    summary = dict(_table_rows(proc.stdout))
    assert (
        summary["input rows"] == "10"
        and summary["bad input rows (errors/)"] == "4"
        and summary["traces (data/)"] == "12"
    )
    data = read_split(out, "data").to_pylist()
    assert [(r["problem_id"], r["sample_index"]) for r in data] == [(f"p{i}", j) for i in range(6) for j in range(2)]
    for r in data:
        assert r["id"] == f"{r['problem_id']}/s3/{r['sample_index']}"
        # a completion cut at --max-new-tokens keeps only an explicitly marked answer (issue 22)
        assert r["steps"] == split_steps(r["completion"])
        assert r["final_answer"] == final_answer(r["completion"], DEFAULT_ANSWER_FALLBACK, r["finish_reason"])
        assert r["verdict"] == ("no_answer" if r["final_answer"] is None else r["verdict"])
        assert r["verdict"] in {"correct", "incorrect", "unparseable", "no_answer"} and 0 <= r["num_tokens"] <= 16
        # a random model is right only by accident (the last-number rule can read a random digit)
        same = [x for x in data if x["problem_id"] == r["problem_id"]]
        assert r["finish_reason"] in {"stop", "length"} and r["pass_rate"] == sum(
            x["verdict"] == "correct" for x in same
        ) / len(same)
        prov = r["provenance"]
        assert (
            prov["engine"] == "hf" and prov["model"] == tiny_model_dir and prov["seed"] == 3
        )  # --engine auto → hf here
        assert prov["sampling"] == {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 16, "n": 2}
    errors = read_split(out, "errors").to_pylist()
    assert {e["row"]: e["reason"].split(":")[0] for e in errors}.keys() == BAD_LINES.keys()
    for e in errors:
        assert BAD_LINES[e["row"]] in e["reason"] and e["source"] == str(problems_file) and e["raw"]
    for split, n in (("data", 12), ("errors", 4)):
        assert len(load_arrow_dir(out / split, tmp_path / "hf")) == n
    # re-running a finished command re-does nothing and changes nothing
    again = rsynth(solutions_args(problems_file, out, tiny_model_dir), cli_env)
    assert again.returncode == 0 and "already complete" in again.stdout
    assert read_split(out, "data").to_pylist() == data


def test_keep_pass_rate_and_limit(
    tmp_path: Path, problems_file: Path, tiny_model_dir: str, cli_env: dict[str, str]
) -> None:
    """Problems outside the pass-rate range go to filtered/ (kept as evidence); --limit counts input rows."""
    out = tmp_path / "hi"
    proc = rsynth(
        solutions_args(problems_file, out, tiny_model_dir, "--keep-pass-rate", "0.5:1", "--limit", "5"), cli_env
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["splits"]["data"]["rows"] == 0 and manifest["splits"]["filtered"]["rows"] == 6  # p0, p1, p2 × 2
    assert manifest["splits"]["errors"]["rows"] == 2  # lines 3 and 5 are within the first 5 rows
    filtered = read_split(out, "filtered").to_pylist()
    assert {r["problem_id"] for r in filtered} == {"p0", "p1", "p2"} and all(r["pass_rate"] == 0.0 for r in filtered)
    assert len(load_arrow_dir(out / "filtered", tmp_path / "hf")) == 6
    lo = tmp_path / "lo"
    proc = rsynth(
        solutions_args(problems_file, lo, tiny_model_dir, "--keep-pass-rate", "0:0.5", "--limit", "5"), cli_env
    )
    assert proc.returncode == 0, proc.stderr
    assert read_split(lo, "data").num_rows == 6 and read_split(lo, "filtered") is None
    bad = rsynth(solutions_args(problems_file, lo, tiny_model_dir, "--keep-pass-rate", "0.9:0.1"), cli_env)
    one_line_error(bad, "--keep-pass-rate")


def test_other_command_in_same_out_is_refused(
    tmp_path: Path, problems_file: Path, tiny_model_dir: str, cli_env: dict[str, str]
) -> None:
    out = tmp_path / "out"
    assert (
        rsynth(
            ["generate", "problems", "--template", "linear", "--n", "3", "--out", str(out), "--quiet"], cli_env
        ).returncode
        == 0
    )
    proc = rsynth(solutions_args(problems_file, out, tiny_model_dir), cli_env)
    one_line_error(proc, "different run", "--overwrite")  # refused before any model is loaded
    assert read_split(out, "data").num_rows == 3  # the problems are untouched


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_kill_9_then_resume_matches_uninterrupted(
    tmp_path: Path, tiny_model_dir: str, cli_env: dict[str, str], sig: int
) -> None:
    """kill -9, or SIGTERM (finished work committed once, exit 143), then the same command resumes."""
    inp = tmp_path / "many.jsonl"
    inp.write_text(
        "".join(json.dumps({"question": f"What is {i} + {i}?", "answer": str(2 * i)}) + "\n" for i in range(30))
    )
    args = lambda out: solutions_args(inp, out, tiny_model_dir, "--shard-size", "3", "--max-new-tokens", "24")  # noqa: E731
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsynth", *args(out)], env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    manifest = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            manifest = json.loads((out / MANIFEST).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            manifest = None
        if manifest and manifest["cursor"] >= 6 and not manifest["complete"]:
            os.kill(proc.pid, sig)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 143), "the run finished before it could be killed"
    if sig == signal.SIGTERM:
        stderr = proc.stderr.read().decode()
        assert "interrupted" in stderr and "Traceback" not in stderr
    manifest = json.loads((out / MANIFEST).read_text())
    assert not manifest["complete"]
    for split, info in manifest["splits"].items():  # what a reader sees after the kill is whole and consistent
        for s in info["shards"]:
            assert read_arrow(out / s["file"]).num_rows == s["rows"]
        for f in (out / split).glob("*.arrow"):
            read_arrow(f)
    resumed = rsynth(args(out), cli_env)
    assert resumed.returncode == 0, resumed.stderr
    ref = tmp_path / "ref"
    assert rsynth(args(ref), cli_env).returncode == 0
    assert read_split(out, "data").to_pylist() == read_split(ref, "data").to_pylist()
    assert read_split(out, "data").num_rows == 60
    assert len(load_arrow_dir(out / "data", tmp_path / "hf")) == 60


def test_openai_engine_through_the_cli(
    tmp_path: Path, problems_file: Path, openai_server, cli_env: dict[str, str]
) -> None:
    openai_server.reset()
    out = tmp_path / "out"
    args = solutions_args(
        problems_file, out, "tiny", "--engine", "openai", "--base-url", openai_server.base_url, "--concurrency", "3"
    )
    proc = rsynth(args, cli_env)
    assert proc.returncode == 0, proc.stderr
    data = read_split(out, "data").to_pylist()
    assert len(data) == 12 and {r["provenance"]["engine"] for r in data} == {"openai"}
    assert openai_server.requests == 6 and {b["n"] for b in openai_server.bodies} == {2}


@pytest.mark.slow
def test_real_default_model_small_generate(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """The embedded SmolLM2 end to end: 2 problems × 2 samples × 48 tokens (converts once on a fresh machine)."""
    inp = tmp_path / "p.jsonl"
    inp.write_text(
        json.dumps({"problem": "Tom has 3 apples and buys 2 more. How many apples does he have?", "answer": "5"})
        + "\n"
        + json.dumps({"problem": "What is 10 - 4?", "answer": "6"})
        + "\n"
    )
    out = tmp_path / "out"
    proc = rsynth(
        [
            "generate",
            "solutions",
            "--input",
            str(inp),
            "--out",
            str(out),
            "--n-samples",
            "2",
            "--max-new-tokens",
            "48",
            "--seed",
            "0",
            "--quiet",
        ],
        cli_env,
    )
    assert proc.returncode == 0, proc.stderr
    data = read_split(out, "data").to_pylist()
    assert len(data) == 4 and {r["provenance"]["model"] for r in data} == {"SmolLM2-135M-Instruct"}
    assert all(r["num_tokens"] > 0 and " " in r["completion"] for r in data)  # real words, not byte soup


def test_openai_unknown_model_is_one_line(
    tmp_path: Path, problems_file: Path, openai_server, cli_env: dict[str, str]
) -> None:
    """A 4xx from the server is the user's to fix: one line with the server's message, no traceback."""
    openai_server.reset()
    args = solutions_args(
        problems_file, tmp_path / "out", "no-such-model", "--engine", "openai", "--base-url", openai_server.base_url
    )
    one_line_error(rsynth(args, cli_env), "HTTP 404", "no-such-model")
