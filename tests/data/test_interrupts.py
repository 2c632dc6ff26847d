"""Ctrl-C and SIGTERM stop a run cleanly: real signals sent to a real child process at chosen points,
including inside the commit, then the same command resumes to the uninterrupted output. Also: one
writer per output directory (two real processes), a killed holder's lock taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rsynth.data.shards import MANIFEST, read_split
from tests.data.test_shards import _reference, check_consistent
from tests.paths import REPO, TESTS

CHILD = TESTS / "interrupt_child.py"
N, SIZE = 12, 5  # each input emits 2 data rows, so shards fill in the middle of an input's rows


def child(out: Path, mode: str = "") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = [sys.executable, str(CHILD), str(out), str(N), str(SIZE), *([mode] if mode else [])]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


@pytest.mark.parametrize(
    "mode,sig",
    [
        ("commit:2", signal.SIGINT),  # inside a shard commit: the shard is in place, the manifest not yet
        ("commit:3", signal.SIGTERM),
        ("manifest:2", signal.SIGINT),  # inside the commit, just before its manifest write
        ("between:6", signal.SIGTERM),  # between commits, with rows buffered
        ("between:0", signal.SIGINT),  # before the first shard
    ],
)
def test_signal_commits_once_exits_130_or_143_and_resumes_identically(tmp_path: Path, mode: str, sig: int) -> None:
    out = tmp_path / "out"
    proc = child(out, mode)
    assert proc.stdout.readline().strip() == "READY"
    proc.send_signal(sig)
    code, stdout, stderr = finish(proc)
    assert code == 128 + sig, (code, stderr)
    assert "interrupted" in stderr and "Traceback" not in stderr and "DONE" not in stdout
    manifest = check_consistent(out)
    assert not manifest["complete"]
    assert not list(out.rglob(".*.tmp"))
    resumed = child(out)
    code, stdout, stderr = finish(resumed)
    assert code == 0 and stdout.strip() == "DONE", stderr
    check_consistent(out)
    ref = _reference(tmp_path, N, SIZE)
    for split in ("data", "errors"):
        assert read_split(out, split).to_pylist() == ref[split], split


def test_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = child(out, "between:3")
    assert first.stdout.readline().strip() == "READY"  # holds the lock, mid-run
    second = child(out)
    code, _, stderr = finish(second)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and f"pid {first.pid}" in lines[0] and "Traceback" not in stderr, stderr
    first.kill()  # kill -9: the lock file stays behind, the kernel drops the lock
    first.wait()
    assert (out / ".rsynth.lock").exists()
    third = child(out)
    code, stdout, stderr = finish(third)
    assert code == 0 and stdout.strip() == "DONE", stderr
    ref = _reference(tmp_path, N, SIZE)
    assert read_split(out, "data").to_pylist() == ref["data"]
    assert (out / MANIFEST).exists()
