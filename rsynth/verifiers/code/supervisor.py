"""The sacrificial supervisor of one sandboxed run (run as a script: stdlib only, no rsynth imports).

Why it exists: an untrusted program must never have rsynth (or a pool worker) as its parent. With
the rlimit backend `os.kill(os.getppid(), SIGKILL)` would otherwise kill the whole verification run
and lose every verdict. rsynth starts one supervisor per run in its own session; the supervisor
starts the program (through bwrap, unshare or directly), applies the rlimits and the pids cgroup in
the child (so rsynth itself never forks with a `preexec_fn`), enforces the wall clock, kills the
program's process group and prints one JSON line with the outcome. If the program kills the
supervisor, rsynth sees a supervisor that died without that line and records an `error` for this
run only.

Usage: python -I -S supervisor.py SPEC_JSON, where SPEC_JSON holds argv, cwd, env, the stdin,
stdout and stderr paths, the limits and the cgroup.procs path (or null).
"""

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def _preexec(limits, cgroup_procs):
    """Runs in the child between fork and exec: this process is single-threaded, so it is safe."""
    if cgroup_procs:
        with open(cgroup_procs, "w") as fh:
            fh.write(str(os.getpid()))
    # Dies with the supervisor: a program that kills the supervisor takes itself down too.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    mem = limits["memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] << 20, limits["file_mb"] << 20))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["procs"], limits["procs"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main(spec):
    limits = spec["limits"]
    start = time.monotonic()
    with open(spec["stdin"], "rb") as i, open(spec["stdout"], "wb") as o, open(spec["stderr"], "wb") as e:
        proc = subprocess.Popen(
            spec["argv"], stdin=i, stdout=o, stderr=e, cwd=spec["cwd"], env=spec["env"],
            start_new_session=True, close_fds=True,
            preexec_fn=lambda: _preexec(limits, spec.get("cgroup_procs")),
        )  # fmt: skip
    timed_out = False
    try:
        rc = proc.wait(timeout=limits["wall_s"])
    except subprocess.TimeoutExpired:
        timed_out = True
        _killpg(proc.pid)
        rc = proc.wait()
    seconds = time.monotonic() - start
    _killpg(proc.pid)  # whatever the program left in its group
    print(json.dumps({"returncode": rc, "timed_out": timed_out, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
