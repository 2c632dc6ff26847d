"""Issue 25 through the real CLI: a misbehaving server (tests/openai_server.py fault modes) and real
damaged files in OUT/. Each test asserts what the user sees (one line, the exit code) and that the
finished output equals an undamaged run's, with no completion paid twice (the server counts them)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rsynth.data.doctor import doctor
from rsynth.data.shards import MANIFEST, read_split
from tests.cli.test_generate import one_line_error, rsynth
from tests.cli.test_reliability import GOOD, jsonl, openai_args
from tests.paths import REPO

# one request at a time, so a request's time is the tiny model's, not a queue's; the timeout is generous
# because a loaded CI machine can be slow (the held-reply timing is tested on the engine, tests/engines)
FAST = ("--request-timeout", "30", "--max-retries", "2", "--concurrency", "1")


def _rows(out: Path) -> dict[str, list]:
    return {s: (t.to_pylist() if (t := read_split(out, s)) is not None else []) for s in ("data", "filtered", "errors")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, openai_server) -> dict:
    """An undamaged run on a healthy server: its rows and what it cost the server (made once)."""
    tmp = tmp_path_factory.mktemp("faults")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
    openai_server.reset()
    inp = jsonl(tmp / "in.jsonl", GOOD)
    out = tmp / "clean"
    proc = rsynth(openai_args(inp, out, openai_server, *FAST), env)
    assert proc.returncode == 0, proc.stderr
    return {
        "input": inp,
        "rows": _rows(out),
        "requests": openai_server.requests,
        "paid": openai_server.paid,
        "out": out,
    }


@pytest.fixture()
def clean(reference: dict, openai_server) -> dict:
    openai_server.reset()
    return reference


@pytest.mark.parametrize(
    "fault",
    [
        "short",
        pytest.param("cut", marks=pytest.mark.slow),
        pytest.param("invalid_json", marks=pytest.mark.slow),
        pytest.param("retry_after", marks=pytest.mark.slow),
    ],
)
def test_a_server_misbehaving_once_is_survived_with_identical_output(
    tmp_path: Path, openai_server, cli_env, clean, fault: str
) -> None:
    openai_server.reset(fault=fault, faults=1)
    out = tmp_path / "out"
    proc = rsynth(openai_args(clean["input"], out, openai_server, *FAST), cli_env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert _rows(out) == clean["rows"] and openai_server.requests == clean["requests"] + 1
    stats = json.loads((out / MANIFEST).read_text())["stats"]
    assert stats["request timeout (s)"] == 30 and stats["max retries"] == 2  # the client settings are on record


def test_a_short_reply_is_one_line_never_cached_and_the_rerun_pays_each_completion_once(
    tmp_path: Path, openai_server, cli_env, clean
) -> None:
    openai_server.reset(fault="short", faults=-1)
    out = tmp_path / "out"
    args = openai_args(
        clean["input"], out, openai_server, "--request-timeout", "30", "--max-retries", "1", "--concurrency", "1"
    )
    failed = rsynth(args, cli_env)
    one_line_error(
        failed,
        f"{openai_server.base_url}/chat/completions: invalid reply after 2 attempts: 1 choices for n=2",
        "nothing was cached",
    )
    assert failed.returncode == 2
    openai_server.reset()
    assert rsynth(args, cli_env).returncode == 0
    assert (
        _rows(out) == clean["rows"] and openai_server.requests == clean["requests"]
    )  # the short replies were not replayed


def test_a_server_that_never_answers_in_time_is_one_line_naming_the_option(
    tmp_path: Path, openai_server, cli_env, clean
) -> None:
    openai_server.reset(fault="hold", faults=-1, hold=1.0)
    proc = rsynth(
        openai_args(
            clean["input"],
            tmp_path / "out",
            openai_server,
            "--request-timeout",
            "0.2",
            "--max-retries",
            "1",
            "--concurrency",
            "1",
        ),
        cli_env,
    )
    one_line_error(proc, openai_server.base_url, "no reply within --request-timeout 0.2s after 2 attempts")
    # the failing prompt's 2 attempts; the next prompt may have started (one worker), the third never does
    assert proc.returncode == 2 and openai_server.requests in (2, 4)


def _finished_copy(clean: dict, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(clean["out"], out)
    return out


@pytest.mark.parametrize(
    ("how", "place"),
    [
        ("truncate", "data/shard-00000.arrow"),
        pytest.param("garbage", "errors/shard-00000.arrow", marks=pytest.mark.slow),
        pytest.param("delete", "data/shard-00000.arrow", marks=pytest.mark.slow),
    ],
)
def test_a_damaged_shard_of_a_finished_run_is_redone_from_the_cache(
    tmp_path: Path, openai_server, cli_env, clean, how: str, place: str
) -> None:
    out = _finished_copy(clean, tmp_path)
    path = out / place
    if how == "delete":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:10] if how == "truncate" else b"\x00garbage" * 20)
    (problem,) = doctor(out).problems
    assert problem.startswith(f"{path}: ")
    proc = rsynth(openai_args(clean["input"], out, openai_server, *FAST), cli_env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "already complete" not in proc.stdout
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert line.startswith(f"warning: {path} is damaged")
    assert _rows(out) == clean["rows"] and openai_server.requests == 0  # every completion came from the cache
    assert doctor(out).problems == []


@pytest.mark.parametrize(
    "damage", [b'{"rsynth_version": "0.1', pytest.param(b"\xff\xfe\x00 not json", marks=pytest.mark.slow)]
)
def test_a_damaged_manifest_is_one_line_and_overwrite_keeps_the_cache(
    tmp_path: Path, openai_server, cli_env, clean, damage: bytes
) -> None:
    out = _finished_copy(clean, tmp_path)
    (out / MANIFEST).write_bytes(damage)
    args = openai_args(clean["input"], out, openai_server, *FAST)
    proc = rsynth(args, cli_env)
    one_line_error(proc, f"{out / MANIFEST} is damaged", "--overwrite", "cache.sqlite is kept")
    assert proc.returncode == 2 and "different run" not in proc.stderr
    assert rsynth(args + ["--overwrite"], cli_env).returncode == 0
    assert _rows(out) == clean["rows"] and openai_server.requests == 0


@pytest.mark.parametrize("how", ["truncate", pytest.param("garbage", marks=pytest.mark.slow)])
def test_a_damaged_cache_never_breaks_a_finished_run_and_is_moved_aside(
    tmp_path: Path, openai_server, cli_env, clean, how: str
) -> None:
    out = _finished_copy(clean, tmp_path)
    cache = out / "cache.sqlite"
    for side in ("cache.sqlite-wal", "cache.sqlite-shm"):
        (out / side).unlink(missing_ok=True)
    cache.write_bytes(cache.read_bytes()[:700] if how == "truncate" else b"garbage!" * 512)
    args = openai_args(clean["input"], out, openai_server, *FAST)
    done = rsynth(args, cli_env)
    assert done.returncode == 0 and "already complete" in done.stdout and done.stderr.strip() == ""
    assert doctor(out).problems[0].startswith(f"{cache}: not a readable completion cache")
    redo = rsynth([*args, "--overwrite"], cli_env)
    assert redo.returncode == 0, redo.stderr
    (line,) = [ln for ln in redo.stderr.splitlines() if ln.strip()]
    assert line.startswith(f"warning: the completion cache {cache} is damaged") and "cache.sqlite.damaged-1" in line
    assert _rows(out) == clean["rows"] and (out / "cache.sqlite.damaged-1").exists()
    assert doctor(out).problems == []


def test_doctor_exit_codes(tmp_path: Path, cli_env, clean) -> None:
    ok = rsynth(["doctor", str(clean["out"])], cli_env)
    assert ok.returncode == 0 and ok.stdout.startswith(f"ok: {clean['out']} (1 output,")
    out = _finished_copy(clean, tmp_path)
    (out / "data" / "shard-00000.arrow").write_bytes(b"")
    (out / "cache.sqlite").write_bytes(b"x" * 4096)
    bad = rsynth(["doctor", str(out)], cli_env)
    assert bad.returncode == 1 and bad.stdout.splitlines() == doctor(out).problems and len(bad.stdout.splitlines()) == 2
    assert bad.stdout.startswith(f"{out / 'data' / 'shard-00000.arrow'}: truncated: 0 bytes")
    (tmp_path / "empty").mkdir()
    bad = rsynth(["doctor", str(tmp_path / "empty")], cli_env)
    one_line_error(bad, str(tmp_path / "empty"), "neither a build output")
    assert bad.returncode == 2


def test_client_settings_are_recipe_keys_outside_the_stage_hash(tmp_path: Path) -> None:
    """`request-timeout` and `max-retries` are recipe keys (also under defaults:) that change no sample,
    so raising them on an interrupted build resumes it instead of re-running it."""
    from rsynth.engines.params import EngineParams
    from rsynth.recipes.adapters import config_from
    from rsynth.recipes.builder import stage_hashes
    from rsynth.recipes.recipe import load_recipe

    source = jsonl(tmp_path / "p.jsonl", GOOD)

    def recipe(extra: str) -> Path:
        path = tmp_path / f"r{len(extra)}.yaml"
        path.write_text(
            f"name: t\nout: {tmp_path / 'out'}\ndefaults: {{engine: openai, model: tiny{extra}}}\n"
            f"stages:\n  - solutions: {{id: s, source: {source}, fields: [problem=question]}}\n"
        )
        return path

    plain, tuned = load_recipe(recipe("")), load_recipe(recipe(", request-timeout: 7.5, max-retries: 1"))
    assert stage_hashes(plain) == stage_hashes(tuned)
    params = config_from(EngineParams, tuned.stages[0].params)
    assert params.request_timeout == 7.5 and params.max_retries == 1
