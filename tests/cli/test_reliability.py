"""Issue 14 through the real CLI: oversized rows cost only themselves (real tiny model, real HTTP
server), a changed input is refused, output-path problems are one line before any model loads,
silent changes are gone (invalid UTF-8, bare CR, a --field typo), build and commands keep out of each
other's directories, export refuses bad targets, and stats say what this process did."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsynth.data.readers import Record, RowError, read_records, set_encoding_errors
from rsynth.data.shards import MANIFEST, iter_split_rows, read_split
from tests.cli.test_generate import one_line_error, rsynth, solutions_args

GOOD = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(3)]
LONG_TOKENS = {
    "question": " ".join(f"w{i}x{i * 7}" for i in range(4000)),
    "answer": "1",
}  # ~30k chars: past the 1024-token context
LONG_CHARS = {"question": "a" * 250_000, "answer": "1"}  # past the default --max-input-chars


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_too_long_rows_go_to_errors_and_the_good_rows_are_kept(
    tmp_path: Path, tiny_model_dir: str, cli_env: dict[str, str]
) -> None:
    inp = jsonl(tmp_path / "in.jsonl", [GOOD[0], LONG_TOKENS, GOOD[1], LONG_CHARS, GOOD[2]])
    out = tmp_path / "out"
    proc = rsynth(solutions_args(inp, out, tiny_model_dir, "--max-new-tokens", "8"), cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = list(iter_split_rows(out, "errors"))
    assert [e["row"] for e in errors] == [2, 4]
    assert all(e["reason"].startswith("too_long") for e in errors)
    assert "context of 1024" in errors[0]["reason"] and "--max-input-chars 200000" in errors[1]["reason"]
    data = list(iter_split_rows(out, "data"))
    assert sorted({r["problem"] for r in data}) == sorted(g["question"] for g in GOOD) and len(data) == 6
    again = rsynth(solutions_args(inp, out, tiny_model_dir, "--max-new-tokens", "8"), cli_env)
    assert again.returncode == 0 and "already complete" in again.stdout  # and re-runs do not crash either


def openai_args(inp: Path, out: Path, server, *extra: str) -> list[str]:
    return [
        "generate",
        "solutions",
        "--input",
        str(inp),
        "--out",
        str(out),
        "--engine",
        "openai",
        "--model",
        "tiny",
        "--base-url",
        server.base_url,
        "--field",
        "problem=question",
        "--n-samples",
        "2",
        "--max-new-tokens",
        "8",
        "--quiet",
        *extra,
    ]


def test_openai_length_refusal_is_an_error_row(tmp_path: Path, openai_server, cli_env: dict[str, str]) -> None:
    openai_server.reset()
    inp = jsonl(tmp_path / "in.jsonl", [GOOD[0], LONG_TOKENS, GOOD[1]])
    out = tmp_path / "out"
    proc = rsynth(openai_args(inp, out, openai_server), cli_env)
    assert proc.returncode == 0, proc.stderr
    (error,) = iter_split_rows(out, "errors")
    assert error["row"] == 2 and error["reason"].startswith("too_long") and "maximum context length" in error["reason"]
    assert read_split(out, "data").num_rows == 4


def test_changed_input_is_refused_and_an_untouched_rerun_reports_stored_figures(
    tmp_path: Path, openai_server, cli_env: dict[str, str]
) -> None:
    openai_server.reset()
    inp = jsonl(tmp_path / "in.jsonl", GOOD[:2])
    out = tmp_path / "out"
    args = openai_args(inp, out, openai_server)
    assert rsynth(args, cli_env).returncode == 0
    os.utime(inp, (time.time() + 5, time.time() + 5))  # touched, same bytes: the same input
    again = rsynth(args, cli_env)
    assert again.returncode == 0 and "already complete" in again.stdout
    assert "stored: traces (data/)" in again.stdout and "engine prompts sent this run" in again.stdout
    jsonl(inp, [GOOD[0], {**GOOD[1], "answer": "99"}, GOOD[2]])  # one row edited, one appended
    changed = rsynth(args, cli_env)
    one_line_error(changed, "input changed since", "--overwrite")
    assert changed.returncode == 2
    redone = rsynth([*args, "--overwrite"], cli_env)
    assert redone.returncode == 0 and read_split(out, "data").num_rows == 6


def test_field_naming_a_missing_column_is_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    inp = jsonl(tmp_path / "in.jsonl", GOOD)
    proc = rsynth(
        solutions_args(inp, tmp_path / "out", "/no/such/model")[:-1] + ["--field", "problem=questoin", "--quiet"],
        cli_env,
    )
    one_line_error(proc, "questoin", "question")
    assert proc.returncode == 2


def test_invalid_utf8_and_bare_cr(tmp_path: Path) -> None:
    bad = b'{"question": "caf\xe9", "answer": "1"}'
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b'{"question": "a", "answer": "1"}\r{"x": 1}\n' + bad + b"\n" + b'{"question": "b", "answer": "2"}\r\n'
    )
    rows = list(read_records(str(path)))
    assert isinstance(rows[0], RowError) and rows[0].row == 1  # a bare CR is not a line break: one broken line
    assert isinstance(rows[1], RowError) and rows[1].row == 2 and "invalid UTF-8" in rows[1].reason
    assert base64.b64decode(rows[1].raw) == bad
    assert isinstance(rows[2], Record) and rows[2].row == 3 and rows[2].data["question"] == "b"
    set_encoding_errors("replace")
    try:
        kept = list(read_records(str(path)))[1]
    finally:
        set_encoding_errors("strict")
    assert isinstance(kept, Record) and kept.data["question"] == "caf\ufffd"


def test_output_file_and_read_only_out_are_one_line_before_the_model_loads(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    inp = jsonl(tmp_path / "in.jsonl", GOOD)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    one_line_error(rsynth(solutions_args(inp, a_file, "/no/such/model"), cli_env), "is a file")
    ro = tmp_path / "ro"
    ro.mkdir()
    for out in (ro, ro / "new"):  # an existing read-only directory, and one that cannot be created
        cmd = [
            "bwrap",
            "--bind",
            "/",
            "/",
            "--ro-bind",
            str(ro),
            str(ro),
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            sys.executable,
            "-m",
            "rsynth",
            *solutions_args(inp, out, "/no/such/model"),
        ]
        proc = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)
        one_line_error(proc, "Read-only file system", str(out))
        assert proc.returncode == 2


def test_disk_full_while_writing_is_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    small = tmp_path / "small"
    small.mkdir()
    cmd = [
        "bwrap",
        "--bind",
        "/",
        "/",
        "--size",
        str(64 * 1024),
        "--tmpfs",
        str(small),
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        sys.executable,
        "-m",
        "rsynth",
        "generate",
        "problems",
        "--n",
        "3000",
        "--shard-size",
        "100",
        "--out",
        str(small / "out"),
        "--quiet",
    ]
    proc = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)
    one_line_error(proc, "No space left on device")
    assert proc.returncode == 2


def test_build_and_commands_refuse_each_other(tmp_path: Path, cli_env: dict[str, str]) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"out: {tmp_path / 'build'}\nstages:\n  - problems: {{n: 3}}\n")
    assert rsynth(["build", str(recipe), "--quiet"], cli_env).returncode == 0
    into_build = rsynth(
        ["generate", "problems", "--n", "3", "--out", str(tmp_path / "build" / "problems"), "--overwrite"], cli_env
    )
    one_line_error(into_build, "build.json")
    single = tmp_path / "single"
    assert rsynth(["generate", "problems", "--n", "3", "--out", str(single)], cli_env).returncode == 0
    onto_single = rsynth(["build", str(recipe), "--set", f"out={single}", "--quiet"], cli_env)
    assert (
        onto_single.returncode == 2
        and "holds the output of" in onto_single.stderr
        and "Traceback" not in onto_single.stderr
    )
    assert not (single / "build.json").exists()


def test_export_refuses_bad_targets_and_corrupt_inputs(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "problems"
    assert rsynth(["generate", "problems", "--n", "3", "--out", str(out)], cli_env).returncode == 0
    export = lambda target: rsynth(["export", "--input", str(out), "--out", str(target)], cli_env)  # noqa: E731
    one_line_error(export(tmp_path), "is a directory")
    one_line_error(export(tmp_path / "x.csv"), "unknown suffix")
    assert not list(tmp_path.glob(".*.tmp"))
    shard = out / "data" / "shard-00000.arrow"
    saved = shard.read_bytes()
    shard.write_bytes(b"garbage")
    one_line_error(export(tmp_path / "x.jsonl"), "unreadable")
    shard.write_bytes(saved)
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "complete": False}))
    unfinished = export(tmp_path / "x.jsonl")
    # problems carry no step labels: refused before the unfinished-run warning (issue 15: no silent 0-row export)
    assert unfinished.returncode == 2 and "none with step labels" in unfinished.stderr
    (out / MANIFEST).write_text("{not json")
    one_line_error(export(tmp_path / "x.jsonl"), "manifest.json is damaged (not valid JSON")


def test_recipe_with_non_utf8_bytes_is_file_and_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(b"out: x\nstages:\n  - problems: {n: 3}  # caf\xe9\n")
    one_line_error(rsynth(["build", str(recipe), "--dry-run"], cli_env), f"{recipe}:3", "not UTF-8")


def test_card_records_the_effective_recipe(tmp_path: Path) -> None:
    from rsynth.recipes.recipe import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("out: x\nstages:\n  - problems: {n: 3}\n")
    assert load_recipe(recipe).text == recipe.read_text()
    text = load_recipe(recipe, ["stages.problems.n=7"]).text
    assert "--set stages.problems.n=7" in text and "n: 7" in text and "n: 3" not in text


@pytest.mark.slow
def test_ctrl_c_reaches_pool_workers_without_tracebacks(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Ctrl-C at a terminal signals the whole process group: the verifier's workers must stay quiet
    and the parent commits, exits 130 and resumes to the full output."""
    inp = jsonl(
        tmp_path / "in.jsonl", [{"gold": f"\\frac{{{i}}}{{{i + 1}}}", "pred": f"{i}/{i + 1}"} for i in range(1500)]
    )
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "rsynth",
        "verify",
        "math",
        "--input",
        str(inp),
        "--out",
        str(out),
        "--batch-size",
        "50",
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(
        args, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads((out / MANIFEST).read_text())["cursor"] >= 100:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr and "interrupted" in stderr
    resumed = subprocess.run(args, env=cli_env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert read_split(out, "data").num_rows == 1500
