"""A process pool with a hard per-item timeout that kills only the overrunning worker.

`concurrent.futures.ProcessPoolExecutor` cannot cancel a running task: the only way out of a hung
item is to tear the whole pool down and lose every other worker's in-flight item. Here each worker
owns one pipe; the parent waits on all pipes with the nearest deadline as its timeout, and a worker
past its deadline (or one that died: segfault, OOM kill) is killed and replaced on its own, while
the others keep going. Workers announce readiness after their warm-up (imports), so start-up time
never eats into an item's timeout.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from rsynth.spawn import main_hidden

READY = "__ready__"


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok" (value is the result) | "timeout" | "crash" (value is the reason)
    value: Any = None


def _worker_main(conn: Connection, fn: Callable[..., Any], warmup: Callable[[], None] | None, memory_mb: int) -> None:
    from rsynth.data.interrupts import ignore_interrupts

    ignore_interrupts()  # Ctrl-C is the parent's to handle; it kills its workers on the way out
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if warmup is not None:
        warmup()
    conn.send(READY)
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", fn(*args)))
        except BaseException as exc:  # an item's failure is its outcome, never the worker's death
            conn.send(("crash", f"{type(exc).__name__}: {str(exc)[:300]}"))


class _Worker:
    def __init__(self, ctx: Any, fn: Callable[..., Any], warmup: Callable[[], None] | None, memory_mb: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, fn, warmup, memory_mb), daemon=True)
        with main_hidden():  # the worker must not re-run the caller's script (rsynth.spawn)
            self.proc.start()
        child.close()
        self.ready = False
        self.item: int | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class HardTimeoutPool:
    """Run `fn(*args)` for each args tuple in `workers` processes, `timeout` seconds per item at most."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        workers: int = 1,
        timeout: float = 5.0,
        warmup: Callable[[], None] | None = None,
        memory_mb: int = 0,
    ) -> None:
        self.fn, self.warmup, self.memory_mb = fn, warmup, memory_mb
        self.timeout = timeout
        self.n_workers = max(1, workers)
        self._ctx = mp.get_context("spawn")  # fork would copy the parent's threads and locks
        self._workers: list[_Worker] = []
        self._start_failures = 0

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.fn, self.warmup, self.memory_mb)

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self._workers[self._workers.index(w)] = self._spawn()

    def map(self, arg_list: Sequence[tuple[Any, ...]]) -> list[Outcome]:
        while len(self._workers) < min(self.n_workers, max(1, len(arg_list))):
            self._workers.append(self._spawn())
        results: list[Outcome | None] = [None] * len(arg_list)
        todo = list(range(len(arg_list)))[::-1]
        done = 0
        while done < len(arg_list):
            now = time.monotonic()
            for w in self._workers:
                if w.ready and w.item is None and todo:
                    w.item = todo.pop()
                    w.deadline = now + self.timeout
                    try:
                        w.conn.send(arg_list[w.item])
                    except (OSError, ValueError) as exc:
                        results[w.item] = Outcome("crash", f"could not send item: {exc}")
                        done += 1
                        self._replace(w)
            busy = [w for w in self._workers if w.item is not None]
            wait_for = min((w.deadline for w in busy), default=now + 60) - time.monotonic()
            ready = wait([w.conn for w in self._workers], timeout=max(0.0, wait_for))
            for w in list(self._workers):
                if w.conn in ready:
                    try:
                        msg = w.conn.recv()
                    except (EOFError, OSError):
                        if not w.ready:
                            self._start_failures += 1
                            if self._start_failures > 3:
                                self.close()
                                raise RuntimeError("verifier worker processes keep dying at start-up") from None
                        if w.item is not None:
                            results[w.item] = Outcome("crash", f"worker died (exit code {w.proc.exitcode})")
                            done += 1
                        self._replace(w)
                        continue
                    if msg == READY:
                        w.ready = True
                    elif w.item is not None:
                        results[w.item] = Outcome(msg[0], msg[1])
                        w.item = None
                        done += 1
                elif w.item is not None and time.monotonic() >= w.deadline:
                    results[w.item] = Outcome("timeout")
                    done += 1
                    self._replace(w)
        return [r for r in results if r is not None]

    def close(self) -> None:
        for w in self._workers:
            w.kill()
        self._workers = []
