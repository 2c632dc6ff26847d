"""Whole-input failures are errors, dry runs validate rows, `generate problems --from` keeps only
problems (issue 22). Real GSM8K / ProcessBench / HumanEval rows; a scripted model over real HTTP."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from rsynth.data.shards import iter_split_rows
from tests.build_support import rsynth
from tests.formal_helpers import ScriptedEngine
from tests.paths import BENCHMARKS


def gsm8k_rows(path: Path, n: int = 4) -> Path:
    """GSM8K rows as published: `question`/`answer`, no `problem` column (needs --field problem=question)."""
    with open(BENCHMARKS / "gsm8k_test.jsonl") as fh:
        path.write_text("".join(line for _, line in zip(range(n), fh)))
    return path


def table(stdout: str) -> dict[str, str]:
    return {
        c[0]: c[1] for line in stdout.splitlines() if len(c := [x.strip() for x in line.split("│") if x.strip()]) == 2
    }


def one_line_error(res, *needles: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr


@pytest.fixture(scope="module")
def server():
    """A scripted model: rewrites (a problem, a solution, a statement without a question) and solutions."""
    from tests.openai_server import serve

    def script(prompt):
        user = prompt.messages[-1][1]
        if "Write a new math word problem" in user:
            return [
                "Mia has 3 boxes with 4 pens each. How many pens does she have?",
                "Mia has 3 boxes with 4 pens each, so she has 3 * 4 = 12 pens.\nThe answer is: 12",
                "Mia has 3 boxes with 4 pens each.",
            ]
        return ["3 * 4 = 12\nThe answer is: 12"]

    srv = serve(ScriptedEngine(script), model_name="scripted")
    yield srv
    srv.stop()


def test_a_run_whose_every_row_fails_alike_exits_2_with_the_fix(tmp_path, server):
    seeds = gsm8k_rows(tmp_path / "gsm8k.jsonl")
    res = rsynth(
        "generate",
        "solutions",
        "-i",
        str(seeds),
        "-o",
        str(tmp_path / "sol"),
        "--engine",
        "openai",
        "--model",
        "scripted",
        "--base-url",
        server.base_url,
        "--quiet",
    )
    one_line_error(res, "every row (4) went to", "missing field problem", "--field problem=COLUMN")
    assert len(list(iter_split_rows(tmp_path / "sol", "errors"))) == 4  # the rows are still there to read
    res = rsynth(
        "generate",
        "solutions",
        "-i",
        str(seeds),
        "-o",
        str(tmp_path / "sol2"),
        "--engine",
        "openai",
        "--model",
        "scripted",
        "--base-url",
        server.base_url,
        "--quiet",
        "--field",
        "problem=question",
    )
    assert res.returncode == 0, res.stderr  # mapped: every row is a trace


@pytest.mark.parametrize(
    "command",
    [
        ("generate", "solutions"),
        ("annotate-prm",),
        ("judge",),
        ("generate", "formal"),
        ("generate", "code"),
        ("generate", "problems"),
    ],
)
def test_every_sampling_dry_run_validates_the_rows(tmp_path, command):
    seeds = gsm8k_rows(tmp_path / "gsm8k.jsonl")
    flag = "--from" if command == ("generate", "problems") else "--input"
    res = rsynth(*command, flag, str(seeds), "-o", str(tmp_path / "o"), "--dry-run")
    one_line_error(res, "every row (4) would go to errors/", "missing field")
    assert not (tmp_path / "o").exists()


def test_dry_runs_count_valid_and_bad_rows(tmp_path):
    pb = json.loads((BENCHMARKS / "processbench_gsm8k.json").read_text())[:3]
    traces = tmp_path / "pb.jsonl"
    rows = [{"id": g["id"], "problem": g["problem"], "answer": "1", "steps": g["steps"]} for g in pb] + [
        {"id": "x", "steps": ["a"]}
    ]
    traces.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = rsynth("annotate-prm", "--input", str(traces), "-o", str(tmp_path / "o"), "--dry-run", env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    assert (
        table(res.stdout)["valid rows"] == "3" and table(res.stdout)["first bad row"] == "row 4: missing field problem"
    )
    with gzip.open(BENCHMARKS / "humaneval.jsonl.gz", "rt") as fh:
        (tmp_path / "he.jsonl").write_text("".join(next(fh) for _ in range(3)))
    res = rsynth(
        "generate",
        "code",
        "--input",
        str(tmp_path / "he.jsonl"),
        "-o",
        str(tmp_path / "c"),
        "--dry-run",
        env={"COLUMNS": "200"},
    )
    assert res.returncode == 0 and table(res.stdout)["valid rows"] == "3", res.stdout + res.stderr


def test_problems_from_honours_n_and_rejects_non_problems_with_reasons(tmp_path, server):
    seeds = gsm8k_rows(tmp_path / "gsm8k.jsonl", 2)
    out = tmp_path / "rw"
    args = [
        "--field",
        "problem=question",
        "--engine",
        "openai",
        "--model",
        "scripted",
        "--base-url",
        server.base_url,
        "--quiet",
    ]
    res = rsynth("generate", "problems", "--from", str(seeds), "--n", "6", "-o", str(out), *args)
    assert res.returncode == 0, res.stderr
    kept = list(iter_split_rows(out))
    rejected = list(iter_split_rows(out, "rejected"))
    assert len(kept) + len(rejected) == 6  # --n 6 rewrites in total: 3 for each of 2 seeds, every one accounted for
    assert [r["problem"] for r in kept] == ["Mia has 3 boxes with 4 pens each. How many pens does she have?"] * 2
    assert all(r["reference_answer"] == "12" for r in kept) and len({r["id"] for r in kept + rejected}) == 6
    assert sorted(r["reason"] for r in rejected) == [
        "no_question",
        "no_question",
        "states_an_answer",
        "states_an_answer",
    ]
    assert all(json.loads(r["evidence"])["seed_problem"] for r in rejected)
    res = rsynth("generate", "problems", "--from", str(seeds), "--n", "3", "-o", str(tmp_path / "rw3"), *args)
    assert res.returncode == 0, res.stderr
    ids = [r["id"] for split in ("data", "rejected") for r in iter_split_rows(tmp_path / "rw3", split)]
    per_seed = sorted(Counter(i.split("-rw")[0] for i in ids).values())
    assert per_seed == [1, 2]  # 3 in total over 2 seeds: 2 from the first, 1 from the second


def test_rows_without_ids_get_stable_source_refs_carried_through_every_stage(tmp_path, server):
    """ids from the source file's identity and row; every trace names them, after annotate-prm too."""
    with open(BENCHMARKS / "gsm8k_test.jsonl") as fh:
        rows = [json.loads(line) for _, line in zip(range(4), fh)]
    src = tmp_path / "gsm8k.jsonl"
    src.write_text(
        "".join(json.dumps({"question": r["question"], "answer": r["answer"]}) + "\n" for r in rows)
    )  # no ids
    base = ["--engine", "openai", "--model", "scripted", "--base-url", server.base_url, "--quiet"]
    for out in ("a", "b"):
        res = rsynth(
            "generate",
            "solutions",
            "-i",
            str(src),
            "-o",
            str(tmp_path / out),
            "--field",
            "problem=question",
            "--n-samples",
            "2",
            *base,
        )
        assert res.returncode == 0, res.stderr
    a, b = (sorted(iter_split_rows(tmp_path / o), key=lambda r: r["id"]) for o in ("a", "b"))
    assert [r["id"] for r in a] == [r["id"] for r in b]  # the same file gives the same ids in every build
    refs = sorted({r["source_ref"] for r in a})
    name, _, digest_rows = refs[0].partition("@")
    assert name == "gsm8k" and refs == [f"gsm8k@{digest_rows.split(':')[0]}:{i}" for i in range(1, 5)]
    assert all(r["problem_id"] == r["source_ref"] for r in a)
    # a later stage reading the intermediate output keeps the original file and row, not the shard's
    res = rsynth(
        "annotate-prm",
        "--input",
        str(tmp_path / "a"),
        "-o",
        str(tmp_path / "labels"),
        "--k",
        "2",
        "--k0",
        "2",
        "--max-new-tokens",
        "16",
        *base,
    )
    assert res.returncode == 0, res.stderr
    labelled = list(iter_split_rows(tmp_path / "labels"))
    assert labelled and {r["source_ref"] for r in labelled} <= set(refs)
    src.write_text(src.read_text() + json.dumps({"question": "What is 1 + 1?", "answer": "#### 2"}) + "\n")
    res = rsynth(
        "generate",
        "solutions",
        "-i",
        str(src),
        "-o",
        str(tmp_path / "c"),
        "--field",
        "problem=question",
        "--n-samples",
        "1",
        *base,
    )
    assert res.returncode == 0, res.stderr
    assert not {r["source_ref"] for r in iter_split_rows(tmp_path / "c")} & set(refs)  # an edited file: new references
