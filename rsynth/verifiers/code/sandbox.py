"""Run untrusted Python in a real sandbox: bubblewrap, else Linux namespaces via `unshare`; never
silently without one.

Backends (`Sandbox(backend=...)`, CLI `--sandbox`):
- `bwrap`: bubblewrap with every namespace (network, PID, mount, IPC, UTS, cgroup), all
  capabilities dropped, and a minimal read-only view of the system.
- `unshare`: util-linux `unshare` with PID, network, mount, IPC and UTS namespaces; `nsinit.py`
  builds the same minimal read-only view and drops every capability (for machines where bubblewrap
  is missing but namespaces are allowed, e.g. root in a container).
- `unsafe-rlimit`: rlimits and a process group only. It blocks no network, no writes, no reads and
  no signals to the user's other processes, so it is used only when asked for by name.
`auto` takes the first safe backend whose probe (a real run) succeeds; with none, constructing the
sandbox raises `SandboxUnavailable`, whose one-line message names the fixes.

Every run has its own sacrificial supervisor process (`supervisor.py`): rsynth is never the
parent of untrusted code, so a program that kills its parent, its process group or the supervisor
costs only its own verdict. The supervisor applies rlimits (CPU seconds, address space, file
size, process count, no core dumps) in the child, enforces the wall clock and kills the process
group; rsynth keeps an outer deadline on the supervisor itself. The program sees a minimal
environment, and only the scratch directory (mounted at /tmp/work, removed afterwards) is writable.

Where a pids cgroup is writable (root on most Linux hosts) every run also gets its own cgroup with
`pids.max`, because RLIMIT_NPROC does not apply to root, and the cgroup is emptied with SIGKILL
after the run so nothing the program started (setsid, double fork) outlives it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsynth.config import param

log = logging.getLogger("rsynth.sandbox")

STDOUT_LIMIT = 32 << 20  # bytes of stdout kept (tests compare it; recorded MBPP+ outputs reach MBs)
STDERR_TAIL = 2000  # characters of stderr kept as evidence
MOUNT_POINT = "/tmp/work"  # where the scratch directory appears inside the sandbox
SAFE_BACKENDS = ("bwrap", "unshare")
UNSAFE = "unsafe-rlimit"
CHOICES = ("auto", *SAFE_BACKENDS, UNSAFE)
SANDBOX_HELP = (
    "Code sandbox: auto (bwrap, else unshare; refuses when neither works) | bwrap | unshare | "
    "unsafe-rlimit (no isolation, at your own risk)."
)


def sandbox_param(**options: Any) -> Any:
    """The `--sandbox` field every code-running config declares (one flag, one help text, one choice list)."""
    return param("auto", "--sandbox", SANDBOX_HELP, choices=CHOICES, **options)


SUPERVISOR_GRACE_S = 5.0  # past the wall clock, a supervisor that has not reported is killed
HERE = Path(__file__).resolve().parent
FIX = "run `make sandbox` to install bubblewrap, or pass --sandbox unsafe-rlimit to run untrusted code unsandboxed at your own risk"


class SandboxUnavailable(RuntimeError):
    """No safe backend works here; the message is one line naming the fixes."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    file_mb: int = 16
    procs: int = 64


@dataclass(frozen=True)
class Job:
    """One program run: `files` are written into the scratch dir, `main` is executed."""

    files: dict[str, str]
    main: str = "main.py"
    stdin: str = ""
    site: bool = (
        True  # False: `python -S` (no site module, so no .pth files run: the code harness needs only the stdlib)
    )
    hash_seed: int = (
        0  # PYTHONHASHSEED: a second run under another seed shows output that depends on str hashing (set order)
    )


@dataclass(frozen=True)
class RunResult:
    timed_out: bool
    returncode: int | None
    stdout: str
    stderr: str  # the tail
    seconds: float
    backend: str
    crash: str | None = None  # why the run has no outcome (its supervisor died or hung)


def python_executable() -> str:
    """The base interpreter (not a venv shim): the sandbox runs stdlib-only Python in isolated mode."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _env(hash_seed: int = 0) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": MOUNT_POINT,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": str(hash_seed),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def pids_cgroup_root() -> Path | None:
    """A writable pids-controller directory (cgroup v1 `pids` or v2 with pids delegated), or None."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        parts = line.split()
        if "-" not in parts:
            continue
        sep = parts.index("-")
        fstype, mnt, opts = parts[sep + 1], Path(parts[4]), parts[-1].split(",")
        v1 = fstype == "cgroup" and "pids" in opts
        try:
            v2 = fstype == "cgroup2" and "pids" in (mnt / "cgroup.subtree_control").read_text().split()
        except OSError:
            v2 = False
        if (v1 or v2) and os.access(mnt, os.W_OK):
            return mnt
    return None


class _Cgroup:
    """A throw-away pids cgroup: caps the process count and kills everything left in it."""

    def __init__(self, root: Path, name: str, procs: int) -> None:
        self.path = root / name
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(procs))
        self.procs_file = str(self.path / "cgroup.procs")

    def kill_all(self) -> None:
        for _ in range(200):
            try:
                pids = [int(p) for p in Path(self.procs_file).read_text().split()]
            except OSError:
                return
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.01)
        log.warning("could not remove cgroup %s", self.path)


class _Running:
    """One started job: its supervisor process, scratch directory, deadline and (optional) cgroup."""

    def __init__(self, sandbox: Sandbox, job: Job, index: int) -> None:
        self.sandbox = sandbox
        self.root = Path(tempfile.mkdtemp(prefix="rsynth-sbx-"))
        work = self.root / "work"
        work.mkdir()
        for name, text in job.files.items():
            (work / name).write_text(text, encoding="utf-8")
        io = self.root / "io"
        io.mkdir()
        (io / "stdin").write_text(job.stdin, encoding="utf-8")
        self.cgroup = None
        if sandbox.cgroup_root is not None:
            self.cgroup = _Cgroup(
                sandbox.cgroup_root, f"rsynth-{os.getpid()}-{index}-{time.monotonic_ns()}", sandbox.limits.procs
            )
        limits = sandbox.limits
        spec = {
            "argv": sandbox.argv(self.root, job.main, site=job.site, hash_seed=job.hash_seed),
            "cwd": str(work),
            "env": _env(job.hash_seed),
            "stdin": str(io / "stdin"), "stdout": str(io / "stdout"), "stderr": str(io / "stderr"),
            "limits": {"wall_s": limits.wall_s, "cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "file_mb": limits.file_mb, "procs": limits.procs},
            "cgroup_procs": self.cgroup.procs_file if self.cgroup else None,
        }  # fmt: skip
        self.start = time.monotonic()
        self.deadline = self.start + limits.wall_s + SUPERVISOR_GRACE_S
        try:
            with open(io / "supervisor.log", "wb") as log_fh:
                self.proc = subprocess.Popen(
                    [sandbox.python, "-I", "-S", str(HERE / "supervisor.py"), json.dumps(spec)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_fh, start_new_session=True, close_fds=True,
                )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            self.cleanup()
            raise

    def poll(self) -> RunResult | None:
        """The result once the supervisor exited (or overran its deadline: then it is killed); else None."""
        rc = self.proc.poll()
        hung = rc is None and time.monotonic() >= self.deadline
        if rc is None and not hung:
            return None
        self._kill()
        report = self.proc.communicate()[0].decode("utf-8", errors="replace").strip()
        try:
            outcome = json.loads(report.splitlines()[-1])
            crash = None
        except (ValueError, IndexError):
            outcome = {"returncode": None, "timed_out": False, "seconds": time.monotonic() - self.start}
            crash = (
                "sandbox supervisor stopped responding"
                if hung
                else f"sandbox supervisor died ({_exit_text(self.proc.returncode)})"
            )
            tail = self._read("supervisor.log", STDERR_TAIL, head=False).strip()
            if tail and not hung and self.proc.returncode != -signal.SIGKILL:
                crash += ": " + tail.splitlines()[-1]
        rc = outcome["returncode"]
        if self.sandbox.backend in SAFE_BACKENDS and rc is not None and rc > 128:
            rc = (
                128 - rc
            )  # bwrap reports a child killed by signal N as 128 + N; so does the code harness as PID 1 under unshare
        # RLIMIT_CPU sends SIGXCPU, then SIGKILL at the hard limit: the program ran out of time.
        timed_out = outcome["timed_out"] or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
        result = RunResult(
            timed_out=timed_out,
            returncode=None if timed_out else rc,
            stdout=self._read("stdout", STDOUT_LIMIT, head=True),
            stderr=self._read("stderr", STDERR_TAIL * 4, head=False)[-STDERR_TAIL:],
            seconds=outcome["seconds"],
            backend=self.sandbox.backend,
            crash=crash,
        )
        self.cleanup()
        return result

    def _read(self, name: str, limit: int, *, head: bool) -> str:
        path = self.root / "io" / name
        try:
            with open(path, "rb") as fh:
                if not head:
                    fh.seek(max(0, path.stat().st_size - limit))
                return fh.read(limit).decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _kill(self) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def cleanup(self) -> None:
        self._kill()
        if getattr(self, "proc", None) is not None:
            self.proc.wait()

        def make_writable(func, path, _exc) -> None:  # the program may have chmod-ed its files
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path):
                os.chmod(path, 0o700)
            func(path)

        shutil.rmtree(self.root, onerror=make_writable)


def _exit_text(rc: int | None) -> str:
    if rc is not None and rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def _ro_paths(python: str) -> list[str]:
    """What the program sees of the host, read-only: system directories and the Python prefix;
    nothing else (no home directories, no /etc beyond the loader cache, no project files)."""
    paths = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/localtime"]
    for prefix in (os.path.realpath(sys.base_prefix), os.path.dirname(os.path.dirname(python))):
        if not any(prefix == p or prefix.startswith(p + "/") for p in paths):
            paths.append(prefix)
    return [p for p in paths if os.path.lexists(p)]


@functools.cache
def backend_problem(backend: str) -> str | None:
    """Why `backend` cannot run programs here (not installed, namespaces refused...), or None.
    The probe is a real run of a small program through the whole path, supervisor included."""
    tool = shutil.which("bwrap" if backend == "bwrap" else "unshare")
    if tool is None:
        return f"{'bwrap' if backend == 'bwrap' else 'util-linux unshare'} not installed"
    sandbox = Sandbox(Limits(wall_s=30, cpu_s=30), backend=backend, _checked=True)
    try:
        result = sandbox.run(Job({"main.py": "open('probe', 'w').write('ok')\nprint('ok')\n"}))
    except OSError as exc:
        return str(exc)
    if result.returncode == 0 and result.stdout.strip() == "ok":
        return None
    why = result.crash or (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
    return why[:300]


def resolve_backend(backend: str) -> str:
    """The backend `backend` names, checked: `auto` is the first safe backend that works."""
    if backend not in CHOICES:
        raise ValueError(f"unknown sandbox backend {backend!r} (expected {', '.join(CHOICES)})")
    if backend == UNSAFE:
        return backend
    problems = {}
    for name in SAFE_BACKENDS if backend == "auto" else (backend,):
        problems[name] = backend_problem(name)
        if problems[name] is None:
            return name
    found = "; ".join(f"{b}: {p}" for b, p in problems.items())
    raise SandboxUnavailable(f"no code sandbox available ({found}): {FIX}")


def available_backends() -> list[str]:
    """The safe backends that work on this machine (each probed once per process)."""
    return [b for b in SAFE_BACKENDS if backend_problem(b) is None]


class Sandbox:
    """Runs `Job`s under `Limits` in `backend`: auto | bwrap | unshare | unsafe-rlimit."""

    _warned = False  # the unsafe-mode warning, once per process

    def __init__(self, limits: Limits | None = None, backend: str = "auto", *, _checked: bool = False) -> None:
        self.limits = limits or Limits()
        self.backend = backend if _checked else resolve_backend(backend)
        self.python = python_executable()
        self.cgroup_root = pids_cgroup_root()
        if self.backend == UNSAFE and not Sandbox._warned:
            Sandbox._warned = True
            log.warning(
                "UNSAFE SANDBOX: --sandbox unsafe-rlimit runs untrusted code with rlimits only "
                "(network, file reads and writes and signals to this user's processes are NOT blocked)."
            )

    def argv(self, root: Path, main: str, *, site: bool = True, hash_seed: int = 0) -> list[str]:
        """The command the supervisor starts for a run whose scratch files are in `root`/work."""
        command = [self.python, "-s", *([] if site else ["-S"]), main]  # not -I: it would also drop PYTHONHASHSEED
        if self.backend == UNSAFE:
            return command
        if self.backend == "unshare":
            user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
            (root / "fs").mkdir(exist_ok=True)
            return [
                shutil.which("unshare") or "unshare", *user,
                "--pid", "--net", "--mount", "--ipc", "--uts", "--fork", "--kill-child",
                self.python, "-I", "-S", str(HERE / "nsinit.py"), str(root / "fs"), str(root / "work"), json.dumps(_ro_paths(self.python)),
                "--", *command,
            ]  # fmt: skip
        binds = []
        for path in _ro_paths(self.python):
            if os.path.islink(path) and os.path.dirname(path) == "/":
                binds += ["--symlink", os.readlink(path), path]
            else:
                binds += ["--ro-bind", path, path]
        env_args = [arg for key, value in _env(hash_seed).items() for arg in ("--setenv", key, value)]
        return [
            shutil.which("bwrap") or "bwrap",
            "--unshare-all",  # network, PID, IPC, UTS, cgroup (and user, where allowed) namespaces
            "--die-with-parent",
            "--new-session",
            "--cap-drop", "ALL",  # run as root, bwrap would otherwise keep every capability
            *binds,
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",
            "--bind", str(root / "work"), MOUNT_POINT,
            "--chdir", MOUNT_POINT,
            "--clearenv", *env_args,
            "--", *command,
        ]  # fmt: skip

    def run(self, job: Job) -> RunResult:
        return self.run_many([job])[0]

    def run_many(self, jobs: Sequence[Job], workers: int = 1) -> list[RunResult]:
        """Run jobs with at most `workers` in flight, polled from this thread."""
        results: list[RunResult | None] = [None] * len(jobs)
        running: dict[int, _Running] = {}
        nxt = 0
        try:
            while nxt < len(jobs) or running:
                while nxt < len(jobs) and len(running) < max(1, workers):
                    running[nxt] = _Running(self, jobs[nxt], nxt)
                    nxt += 1
                for i, run in list(running.items()):
                    result = run.poll()
                    if result is not None:
                        results[i] = result
                        del running[i]
                if running:
                    time.sleep(0.002)
        finally:
            for run in running.values():
                run.cleanup()
        return [r for r in results if r is not None]
