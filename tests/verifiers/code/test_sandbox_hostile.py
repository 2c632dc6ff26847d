"""Hostile programs under every sandbox backend this machine has; fails when it has none.

Each program runs its attack at import, then defines `f() -> 1` for the test `assert f() == 1`:
a `pass` proves the program ran to the end without getting what it reached for. Every batch also
holds an honest program and a wrong one, which must keep their own verdicts, and the test process
(the verifier's host) must survive. The backend under test is in each test id and printed.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.code import CodeVerifier
from rsynth.verifiers.code.sandbox import FIX, UNSAFE, available_backends, pids_cgroup_root

BACKENDS = available_backends()
HONEST = ("def f():\n    return 1\n", "pass")
WRONG = ("def f():\n    return 2\n", "fail")
SECRET = "hunter2-" + uuid.uuid4().hex


def _ancestors_killer(test_pid: int) -> str:
    """Kill every ancestor (supervisor, sandbox tool, verifier) and the verifier by pid."""
    return (
        "import os, signal\n"
        "def _parent(pid):\n"
        "    try:\n"
        "        return int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])\n"
        "    except (OSError, ValueError, IndexError):\n"
        "        return 0\n"
        f"targets, pid = [{test_pid}], os.getppid()\n"
        "while pid > 1:\n"
        "    targets.append(pid)\n"
        "    pid = _parent(pid)\n"
        "for pid in targets:\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n"
        "        pass\n"
    )


def hostile_programs(tmp_path: Path, secret_file: Path, port: int, marker: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (code run at import, verdicts allowed)."""
    outside = [tmp_path / "escaped.txt", secret_file.parent / "escaped.txt"]
    writes = "".join(f"try:\n    open({str(p)!r}, 'w').write('x')\nexcept OSError:\n    pass\n" for p in outside)
    return {
        "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", {"pass", "error"}),
        "kill_group": ("import os, signal\nos.killpg(0, signal.SIGKILL)\n", {"pass", "error"}),  # PID 1 ignores it
        "kill_supervisor_and_verifier": (_ancestors_killer(os.getpid()), {"pass", "error"}),
        "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)\n", {"pass", "error"}),  # all it may signal
        "fork_storm": (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            {"timeout", "error"},
        ),
        "daemon": (
            "import os, subprocess, sys\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'], start_new_session=True)\n"
            "    os._exit(0)\n"
            "os.wait()\n",
            {"pass"},
        ),
        "network": (
            f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')\n    leaked = 1\n"
            "except OSError:\n    leaked = 0\nassert not leaked, 'connected'\n",
            {"pass"},
        ),
        "write_outside": (writes, {"pass"}),
        "read_secret_file": (
            f"try:\n    leaked = open({str(secret_file)!r}).read()\nexcept OSError:\n    leaked = ''\nprint(leaked)\nassert not leaked\n",
            {"pass"},
        ),
        "read_secret_env": (
            "import os\nprint(os.environ.get('RSYNTH_TEST_SECRET'))\nassert 'RSYNTH_TEST_SECRET' not in os.environ\n",
            {"pass"},
        ),
        "memory_bomb": ("x = bytearray(8 << 30)\n", {"error"}),
        "infinite_loop": ("while True:\n    pass\n", {"timeout"}),
    }


def _alive_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture()
def secret_file(monkeypatch):
    """A secret outside /tmp (whose sandboxed view is private anyway) and a secret variable."""
    monkeypatch.setenv("RSYNTH_TEST_SECRET", SECRET)
    folder = Path("/var/tmp") / f"rsynth-secret-{uuid.uuid4().hex}"
    folder.mkdir(mode=0o700)
    path = folder / "secret.txt"
    path.write_text(SECRET)
    path.chmod(0o600)
    yield path
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()


def run_hostile(backend: str, names: list[str] | None, tmp_path: Path, secret_file: Path) -> None:
    print(f"sandbox backend: {backend}")
    marker = f"rsynth-daemon-{uuid.uuid4().hex}"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    programs = hostile_programs(tmp_path, secret_file, listener.getsockname()[1], marker)
    names = names or list(programs)
    cases = [(n, *programs[n]) for n in names]
    rows = [("honest", HONEST[0], {HONEST[1]})]
    for n, code, allowed in cases:  # an honest and a wrong program after every attack
        rows += [
            (n, code + "\ndef f():\n    return 1\n", allowed),
            ("honest", HONEST[0], {HONEST[1]}),
            ("wrong", WRONG[0], {WRONG[1]}),
        ]
    verifier = CodeVerifier(timeout=4.0, workers=2, memory_mb=512, sandbox=backend)
    assert verifier.sandbox.backend == backend and backend in verifier.version
    verdicts = verifier.verify_batch([VerifyItem("assert f() == 1", code) for _, code, _ in rows])
    assert len(verdicts) == len(rows)  # every row has its verdict, and this process is alive
    got = {
        (i, n): (v.status, v.evidence.get("reason"), v.evidence.get("stderr_tail", "")[-300:])
        for i, ((n, _, allowed), v) in enumerate(zip(rows, verdicts))
        if v.status not in allowed
    }
    assert not got, got
    assert all(v.evidence["sandbox"] == backend for v in verdicts)
    assert not any(SECRET in v.evidence.get("stderr_tail", "") for v in verdicts)
    assert not (tmp_path / "escaped.txt").exists() and not (secret_file.parent / "escaped.txt").exists()
    assert not _alive_with(marker)
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()


def test_this_machine_has_a_sandbox_backend():
    """CI must not pass with the escape tests skipped: no safe backend is a failure."""
    print(f"sandbox backends available: {', '.join(BACKENDS) or 'none'}")
    assert BACKENDS, f"no safe sandbox backend on this machine: {FIX}"


@pytest.mark.slow  # every hostile program under every backend: ~20 s a backend (make test runs it)
@pytest.mark.parametrize("backend", BACKENDS or ["none"])
def test_hostile_programs_are_contained(backend, tmp_path, secret_file):
    if backend == "none":
        pytest.fail(f"no safe sandbox backend on this machine: {FIX}")
    run_hostile(backend, None, tmp_path, secret_file)


@pytest.mark.slow  # the hostile programs again, under rlimits only
def test_unsafe_rlimit_still_survives_its_programs(tmp_path, secret_file):
    """The explicit unsafe mode contains nothing of the file system or network, but the verifier
    still survives a program that kills its parent (the supervisor) or its group, and the rows
    around it keep their verdicts. With a writable pids cgroup, fork storms and daemons end too."""
    names = [
        "kill_parent",
        "kill_group",
        "read_secret_env",
        "memory_bomb",
        "infinite_loop",
    ]  # not kill(-1): as root, the machine
    if pids_cgroup_root() is not None:  # without one, root ignores RLIMIT_NPROC and setsid escapes
        names += ["fork_storm", "daemon"]
    verifier = CodeVerifier(timeout=4.0, workers=2, memory_mb=512, sandbox=UNSAFE)
    supervisor = "int(open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1])"  # the harness's parent
    code = f"import os, signal\nos.kill({supervisor}, signal.SIGKILL)\ndef f():\n    return 1\n"
    verdicts = verifier.verify_batch([VerifyItem("assert f() == 1", c) for c in (code, HONEST[0], WRONG[0])])
    assert [v.status for v in verdicts] == ["error", "pass", "fail"]
    assert "supervisor died (killed by SIGKILL)" in verdicts[0].evidence["reason"]
    run_hostile(UNSAFE, names, tmp_path, secret_file)
