"""`rsynth verify` end to end: field mapping, one row per input row, errors split, user errors."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from rsynth.data.shards import read_split
from tests.paths import BENCHMARKS as BENCH
from tests.paths import REPO as ROOT


def rsynth(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rsynth", *args], capture_output=True, text=True, env=env, timeout=600)


def _jsonl(path: Path, rows: list, raw_lines: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in raw_lines))
    return path


def test_verify_math_cli(tmp_path):
    rows = [
        {"id": "m1", "answer": "\\frac{1}{2}", "model": "The answer is $0.5$."},
        {"id": "m2", "answer": "\\pm 2021", "model": "2021"},
        {"id": "m3", "answer": "5"},  # no prediction column: malformed
        {"id": "m4", "answer": "1", "model": "2^{2^{2^{2^{2^{2^{2}}}}}}"},
    ]
    src = _jsonl(tmp_path / "math.jsonl", rows, raw_lines=("{not json",))
    out = tmp_path / "out"
    res = rsynth(
        "verify",
        "math",
        "--input",
        str(src),
        "--out",
        str(out),
        "--field",
        "gold=answer",
        "--field",
        "pred=model",
        "--timeout",
        "2",
    )
    assert res.returncode == 0, res.stderr
    data = read_split(out, "data").to_pylist()
    errors = read_split(out, "errors").to_pylist()
    assert [(r["id"], r["verdict"]) for r in data] == [("m1", "correct"), ("m2", "incorrect"), ("m4", "timeout")]
    assert json.loads(data[0]["evidence"])["candidate_parsed"] == "1/2"
    assert [(e["row"], e["field"]) for e in errors] == [(3, "model"), (5, None)]
    assert all(e["source"] == str(src) for e in errors) and "missing field" in errors[0]["reason"]
    assert len(data) + len(errors) == len(rows) + 1  # every input row is accounted for exactly once
    assert "correct" in res.stdout and "malformed" in res.stdout
    loaded = datasets.load_dataset("arrow", data_files=str(out / "data" / "*.arrow"), split="train")
    assert loaded.num_rows == 3


def test_verify_code_cli_humaneval_style_with_attacks(tmp_path):
    with gzip.open(BENCH / "humaneval.jsonl.gz", "rt") as fh:
        tasks = [json.loads(line) for line in fh][:3]
    rows = [
        {
            "task_id": t["task_id"],
            "solution": t["prompt"] + t["canonical_solution"],
            "test": t["test"],
            "entry_point": t["entry_point"],
        }
        for t in tasks
    ]
    rows.append({"task_id": "loop", "solution": "def f():\n    while True:\n        pass", "test": "assert f() == 1"})
    rows.append(
        {
            "task_id": "env",
            "solution": "import os\ndef f():\n    return os.environ.get('HOME')",
            "test": "assert f() == '/tmp/work'",
        }
    )
    rows.append({"task_id": "bad", "solution": ["not", "a", "program"], "test": "assert True"})
    src = _jsonl(tmp_path / "code.jsonl", rows)
    out = tmp_path / "out"
    res = rsynth(
        "verify", "code", "--input", str(src), "--out", str(out),
        "--field", "id=task_id", "--field", "code=solution", "--field", "tests=test", "--timeout", "3", "--workers", "2",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = read_split(out, "data").to_pylist()
    verdicts = {r["id"]: r["verdict"] for r in data}
    assert verdicts == {
        "HumanEval/0": "pass",
        "HumanEval/1": "pass",
        "HumanEval/2": "pass",
        "loop": "timeout",
        "env": "pass",
    }
    backend = json.loads(data[-1]["evidence"])["sandbox"]
    assert backend in ("bwrap", "unshare") and {r["verifier_version"] for r in data} == {f"3+sandbox-{backend}"}
    errors = read_split(out, "errors").to_pylist()
    assert len(errors) == 1 and errors[0]["field"] == "solution" and errors[0]["row"] == 6


@pytest.mark.parametrize(
    "args, message",
    [
        (["verify", "math", "--input", "/nonexistent/x.jsonl", "--out", "OUT"], "input file not found"),
        (["verify", "math", "--input", "SRC", "--out", "OUT", "--field", "gold"], "expected NAME=COLUMN"),
        (["verify", "math", "--input", "SRC", "--out", "OUT", "--field", "answer=x"], "math fields are"),
        (["verify", "code", "--input", "SRC", "--out", "OUT", "--style", "pytest"], "--style"),
        (
            ["verify", "code", "--input", "SRC", "--out", "OUT", "--sandbox", "chroot"],
            "--sandbox 'chroot': expected one of auto, bwrap",
        ),
        (
            ["generate", "code", "--input", "SRC", "--out", "OUT", "--sandbox", "chroot"],
            "--sandbox 'chroot': expected one of auto, bwrap",
        ),
        (
            ["verify", "lean", "--input", "SRC", "--out", "OUT", "--lean-command", "no-such-lean"],
            "Lean command not found",
        ),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, message):
    src = _jsonl(tmp_path / "in.jsonl", [{"gold": "1", "pred": "1"}])
    args = [str(src) if a == "SRC" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    res = rsynth(*args)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_rerun_resumes_completed_output(tmp_path):
    src = _jsonl(tmp_path / "m.jsonl", [{"id": "a", "gold": "2", "pred": "2"}])
    out = tmp_path / "out"
    assert rsynth("verify", "math", "--input", str(src), "--out", str(out)).returncode == 0
    again = rsynth("verify", "math", "--input", str(src), "--out", str(out))
    assert again.returncode == 0 and read_split(out, "data").num_rows == 1
    other = _jsonl(tmp_path / "n.jsonl", [{"id": "b", "gold": "3", "pred": "3"}])
    clash = rsynth("verify", "math", "--input", str(other), "--out", str(out))
    assert clash.returncode == 2 and "--overwrite" in clash.stderr


def test_verify_code_refuses_without_a_sandbox_and_runs_when_unsafe_is_asked_for(tmp_path):
    """No bwrap and no unshare on PATH: one line naming the fixes, exit 2, nothing run; with
    --sandbox unsafe-rlimit (or its old name --backend) the run goes on and every row says so."""
    src = _jsonl(tmp_path / "c.jsonl", [{"id": "a", "code": "def f():\n    return 1", "tests": "assert f() == 1"}])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": str(tmp_path / "empty-bin")}

    def run(*extra):
        return subprocess.run(
            [sys.executable, "-m", "rsynth", "verify", "code", "--input", str(src), *extra],  # noqa: E731
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    refused = run("--out", str(tmp_path / "o1"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "make sandbox" in refused.stderr and "--sandbox unsafe-rlimit" in refused.stderr
    gen = subprocess.run(
        [sys.executable, "-m", "rsynth", "generate", "code", "--input", str(src), "--out", str(tmp_path / "g")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )  # refused before any model loads
    assert gen.returncode == 2 and "make sandbox" in gen.stderr and len(gen.stderr.strip().splitlines()) == 1
    for flag, out in (("--sandbox", "o2"), ("--backend", "o3")):
        res = run("--out", str(tmp_path / out), flag, "unsafe-rlimit")
        assert res.returncode == 0, res.stderr
        (row,) = read_split(tmp_path / out, "data").to_pylist()
        assert row["verdict"] == "pass" and row["verifier_version"] == "3+sandbox-unsafe-rlimit"
        assert json.loads(row["evidence"])["sandbox"] == "unsafe-rlimit"


def test_verify_code_evalplus_style_on_mbppplus_rows(tmp_path):
    rows = {r["task_id"]: r for r in map(json.loads, (BENCH / "mbppplus.jsonl").read_text().splitlines())}
    task = rows["Mbpp/3"]  # the base asserts pass this wrong program; the plus inputs do not
    wrong = {**task, "solution": "def is_not_prime(n):\n    return n in (1, 10, 35)\n"}
    right = {**task, "solution": task["canonical_solution"]}
    src = _jsonl(tmp_path / "mbpp.jsonl", [wrong, right])
    out = tmp_path / "out"
    res = rsynth(
        "verify",
        "code",
        "--input",
        str(src),
        "--out",
        str(out),
        "--style",
        "evalplus",
        "--field",
        "code=solution",
        "--field",
        "id=task_id",
    )
    assert res.returncode == 0, res.stderr
    assert [r["verdict"] for r in read_split(out, "data").to_pylist()] == ["fail", "pass"]
