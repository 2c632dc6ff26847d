"""Real damaged files at each place of an output directory (truncated, garbage, deleted): a resumed
writer rolls back past a damaged shard and redoes only what came after it, a damaged manifest is
named as damaged, and `rsynth doctor` finds each problem without changing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsynth.data.doctor import doctor
from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA
from rsynth.data.shards import MANIFEST, OutputError, ShardSetWriter, read_split, refuse_other_stage, release_output
from tests.shard_writer_child import rows_for

N, SIZE = 23, 5


def _write(out: Path) -> list[int]:
    """Run (or resume) the deterministic writer to the end; returns the inputs this call emitted."""
    w = ShardSetWriter(out, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="t", run_key="k", shard_size=SIZE)
    done = list(range(w.cursor, N)) if not w.complete else []
    for i in done:
        for split, row in rows_for(i):
            w.add(split, row, i)
        w.input_done(i)
    if not w.complete:
        w.close({"inputs": N})
    else:
        release_output(out)
    return done


def _damage(path: Path, how: str) -> None:
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte, same size: only the checksum sees it
        path.write_bytes(bytes(data))
    else:
        path.unlink()


def _splits(out: Path) -> dict[str, list]:
    return {s: (read_split(out, s) or []) and read_split(out, s).to_pylist() for s in ("data", "errors")}


@pytest.fixture()
def reference(tmp_path: Path) -> dict[str, list]:
    _write(tmp_path / "ref")
    return _splits(tmp_path / "ref")


@pytest.mark.parametrize("how", ["truncate", "garbage", "delete"])
@pytest.mark.parametrize("shard", ["data/shard-00004.arrow", "data/shard-00009.arrow", "errors/shard-00002.arrow"])
def test_a_damaged_shard_is_dropped_and_only_what_followed_it_is_redone(
    tmp_path: Path, reference, capfd, how: str, shard: str
) -> None:
    out = tmp_path / "out"
    _write(out)
    before = json.loads((out / MANIFEST).read_text())
    entry = next(e for e in before["splits"][shard.split("/")[0]]["shards"] if e["file"] == shard)
    _damage(out / shard, how)
    assert [p.split(":")[0] for p in doctor(out).problems] == [str(out / shard)]
    redone = _write(out)
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {out / shard} is damaged (") and "redoing its rows" in err[0]
    assert redone and redone[0] == entry["before"]["cursor"] < N  # rolled back to the checkpoint before it, not to 0
    assert _splits(out) == reference and json.loads((out / MANIFEST).read_text())["splits"] == before["splits"]
    assert doctor(out).problems == []


@pytest.mark.parametrize("how", ["truncate", "garbage", "delete"])
def test_a_damaged_zero_row_shard_is_not_taken_as_complete(tmp_path: Path, capfd, how: str) -> None:
    """A run whose errors split got no rows holds one 0-row shard; losing it must be noticed."""
    out = tmp_path / "out"
    w = ShardSetWriter(out, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="t", run_key="k", shard_size=SIZE)
    w.add("data", rows_for(1)[0][1], 0)
    w.input_done(0)
    w.close({})
    _damage(out / "errors/shard-00000.arrow", how)
    w = ShardSetWriter(out, {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="t", run_key="k", shard_size=SIZE)
    assert not w.complete and w.cursor == 0
    assert "errors/shard-00000.arrow is damaged" in capfd.readouterr().err


@pytest.mark.parametrize("damage", [b"", b'{"stage": "t", "run_key": "k", "cur', b"\x00\xff garbage", b"[1, 2]"])
def test_a_damaged_manifest_is_named_damaged_never_a_different_run(tmp_path: Path, damage: bytes) -> None:
    out = tmp_path / "out"
    _write(out)
    (out / "cache.sqlite").write_bytes(b"")  # a sampling stage's cache: the way out keeps it
    (out / MANIFEST).write_bytes(damage)
    for attempt in (lambda: refuse_other_stage(out, "t", False), lambda: _write(out)):
        with pytest.raises(OutputError) as info:
            attempt()
        message = str(info.value)
        assert message.startswith(f"{out / MANIFEST} is damaged (") and "different run" not in message
        assert "re-run with --overwrite" in message and "cache.sqlite is kept" in message and "\n" not in message
        release_output(out)
    assert any(p.startswith(f"{out / MANIFEST} is damaged") for p in doctor(out).problems)


def test_doctor_finds_each_problem_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write(out)
    report = doctor(out)
    assert report.problems == [] and report.shards == 10 + 5 and report.rows == 2 * N + 5
    (out / "data" / "shard-00099.arrow").write_bytes((out / "data" / "shard-00000.arrow").read_bytes())
    (out / "cache.sqlite").write_bytes(b"not sqlite" * 50)
    (out / "README.md").write_text(
        "---\nconfigs:\n- config_name: x\n  data_files:\n  - split: train\n    path: nothing/*.arrow\n---\n"
    )
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["complete"] = False
    (out / MANIFEST).write_text(json.dumps(manifest))
    problems = doctor(out).problems
    assert len(problems) == 4 and all("\n" not in p for p in problems)
    assert problems[0].startswith(f"{out / MANIFEST}: the run is not finished")
    assert problems[1].startswith(f"{out / 'data' / 'shard-00099.arrow'}: not listed")
    assert problems[2].startswith(f"{out / 'cache.sqlite'}: not a readable completion cache")
    assert problems[3].startswith(f"{out / 'README.md'}: config 'x' points at 'nothing/*.arrow'")
