"""Run untrusted Python in a sandbox: bubblewrap when present, a loudly logged rlimit fallback otherwise.

Both backends apply rlimits (CPU seconds, address space, file size, process count, no core
dumps), start the program in its own session so a wall-clock timeout can kill the whole process
group, pass only a minimal environment, and run it in a scratch directory that is removed
afterwards. bubblewrap adds what rlimits cannot: no network (new network namespace), a read-only
root, a private /tmp, and a new PID namespace whose processes all die with the run.

Where a pids cgroup is writable (root on most Linux hosts) every run also gets its own cgroup with
`pids.max`, because RLIMIT_NPROC does not apply to root, and the cgroup is emptied with SIGKILL
after the run so nothing the program started (setsid, double fork) outlives it.

Several runs execute concurrently from one thread (`run_many` polls them): rlimits are set in a
`preexec_fn`, which is only safe in a process without other threads forking at the same time.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("rsynth.sandbox")

STDOUT_LIMIT = 1 << 20  # bytes of stdout kept (tests compare it)
STDERR_TAIL = 2000  # characters of stderr kept as evidence
MOUNT_POINT = "/tmp/work"  # where the scratch directory appears inside bubblewrap


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


@dataclass(frozen=True)
class RunResult:
    timed_out: bool
    returncode: int | None
    stdout: str
    stderr: str  # the tail
    seconds: float
    backend: str


def python_executable() -> str:
    """The base interpreter (not a venv shim): the sandbox runs stdlib-only Python in isolated mode."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _env() -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": MOUNT_POINT,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
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
    """One started job: its process, scratch directory, deadline and (optional) cgroup."""

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
            self.cgroup = _Cgroup(sandbox.cgroup_root, f"rsynth-{os.getpid()}-{index}-{time.monotonic_ns()}", sandbox.limits.procs)
        argv = sandbox.argv(work, job.main)
        limits, cg_procs = sandbox.limits, self.cgroup.procs_file if self.cgroup else None

        def preexec() -> None:  # runs in the child between fork and exec
            if cg_procs is not None:
                with open(cg_procs, "w") as fh:
                    fh.write(str(os.getpid()))
            mem = limits.memory_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb << 20, limits.file_mb << 20))
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.procs, limits.procs))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.start = time.monotonic()
        self.deadline = self.start + limits.wall_s
        try:
            self.proc = self._start(argv, work, io, preexec)
        except (OSError, subprocess.SubprocessError):
            if self.cgroup is not None:
                self.cgroup.kill_all()
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @staticmethod
    def _start(argv: list[str], work: Path, io: Path, preexec) -> subprocess.Popen:
        with open(io / "stdin", "rb") as stdin, open(io / "stdout", "wb") as out, open(io / "stderr", "wb") as err:
            return subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=out,
                stderr=err,
                cwd=work,
                env=_env(),
                start_new_session=True,
                preexec_fn=preexec,
                close_fds=True,
            )

    def poll(self) -> RunResult | None:
        """The result once the job exited or overran its wall clock (then it is killed); else None."""
        rc = self.proc.poll()
        timed_out = rc is None and time.monotonic() >= self.deadline
        if rc is None and not timed_out:
            return None
        self._kill()
        seconds = time.monotonic() - self.start
        rc = self.proc.wait()
        # RLIMIT_CPU sends SIGXCPU, then SIGKILL at the hard limit: the program ran out of time.
        timed_out = timed_out or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
        result = RunResult(
            timed_out=timed_out,
            returncode=None if timed_out else rc,
            stdout=self._read("stdout", STDOUT_LIMIT, head=True),
            stderr=self._read("stderr", STDERR_TAIL * 4, head=False)[-STDERR_TAIL:],
            seconds=seconds,
            backend=self.sandbox.backend,
        )
        self.cleanup()
        return result

    def _read(self, name: str, limit: int, *, head: bool) -> str:
        path = self.root / "io" / name
        with open(path, "rb") as fh:
            if not head:
                fh.seek(max(0, path.stat().st_size - limit))
            return fh.read(limit).decode("utf-8", errors="replace")

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def cleanup(self) -> None:
        self._kill()
        self.proc.wait()

        def make_writable(func, path, _exc) -> None:  # the program may have chmod-ed its files
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path):
                os.chmod(path, 0o700)
            func(path)

        shutil.rmtree(self.root, onerror=make_writable)


@functools.lru_cache(maxsize=None)
def bwrap_problem(bwrap: str) -> str | None:
    """Why bubblewrap cannot create its namespaces here (e.g. an unprivileged container), or None."""
    try:
        probe = subprocess.run(
            [bwrap, "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["exit code %d" % probe.returncode])[-1]


class Sandbox:
    """Runs `Job`s under `Limits`; `backend` is "auto" (bubblewrap if installed), "bwrap" or "rlimit"."""

    _warned = False

    def __init__(self, limits: Limits | None = None, backend: str = "auto") -> None:
        self.limits = limits or Limits()
        bwrap = shutil.which("bwrap")
        broken = bwrap_problem(bwrap) if bwrap else "not installed"
        if backend == "auto":
            backend = "rlimit" if broken else "bwrap"
        if backend == "bwrap" and broken:
            raise RuntimeError(f"bubblewrap cannot be used ({broken}): run `make sandbox` or use backend='rlimit'")
        if backend not in ("bwrap", "rlimit"):
            raise ValueError(f"unknown sandbox backend {backend!r} (expected auto, bwrap or rlimit)")
        self.backend = backend
        self.bwrap = bwrap
        self.python = python_executable()
        self.cgroup_root = pids_cgroup_root()
        if backend == "rlimit" and not Sandbox._warned:
            Sandbox._warned = True
            log.warning(
                "SANDBOX FALLBACK: running without bubblewrap (%s); untrusted code runs with rlimits only "
                "(network, filesystem writes and signals to same-user processes are NOT blocked). "
                "Install it with `make sandbox` (apt-get install bubblewrap).",
                broken or "backend='rlimit' requested",
            )

    def argv(self, work: Path, main: str) -> list[str]:
        command = [self.python, "-s", main]  # not -I: it would also drop PYTHONHASHSEED
        if self.backend == "rlimit":
            return command
        env_args = [arg for key, value in _env().items() for arg in ("--setenv", key, value)]
        return [
            self.bwrap,
            "--unshare-all",  # network, PID, IPC, UTS, cgroup (and user, where allowed) namespaces
            "--die-with-parent",
            "--new-session",
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",
            "--bind", str(work), MOUNT_POINT,
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
