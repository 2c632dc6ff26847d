"""One real Lean run for every Lean check of a test session, started before the first test.

Why: a wasm Lean run costs minutes whatever it checks (start-up and loading core Lean dominate: a
one-theorem file takes as long as dozens: ~2m45s and 3.6 GB on 2 cores), and the suite used to pay it three times
(the verifier tests, the formal pipelines, and a real CLI run beside them). Now test modules
register at import what they want Lean to check (`contribute`) and the real CLI runs they need
(`launch`); the session starts ONE Lean batch for all items plus those CLI runs in the background
as soon as it knows a selected test needs them (tests/conftest.py), so the minutes overlap the rest
of the suite instead of adding to it.

The batch goes through `StatementChecker`, the `LeanVerifier` subclass the formal pipelines use:
it differs only for items marked `extra["elaborate"]`, so every other item gets exactly the plain
verifier's verdict (tests/verifiers/test_lean.py checks that its items build the same way).

Under pytest-xdist every worker imports every test module: the first worker to claim the run (an
exclusive file in the run's shared temporary directory) starts it, and every worker reads the
results from files there; items are recorded again where they are read and must match.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsynth.verifiers.base import Verdict, VerifyItem
from rsynth.verifiers.lean import wasm_installed

ItemSource = Callable[[Path], list[VerifyItem]]  # scratch dir -> items to check
Command = Callable[[Path, str], list[str]]  # (its output dir, tiny model dir) -> argv
WAIT_S = 1800.0  # a loaded 2-core machine has taken 6 minutes for one Lean start-up

_SOURCES: dict[str, ItemSource] = {}
_COMMANDS: dict[str, Command] = {}


def have_lean() -> bool:
    return wasm_installed() or shutil.which("lean") is not None


def contribute(name: str) -> Callable[[ItemSource], ItemSource]:
    """Register `source(scratch_dir) -> items`; its verdicts come back from `LeanRun.verdicts(name)`."""

    def register(source: ItemSource) -> ItemSource:
        _SOURCES[name] = source
        return source

    return register


def launch(name: str) -> Callable[[Command], Command]:
    """Register a command (a CLI run on a real Lean) started with the batch; `LeanRun.command(name)`."""

    def register(command: Command) -> Command:
        _COMMANDS[name] = command
        return command

    return register


def item_key(item: VerifyItem) -> str:
    return json.dumps([item.reference, item.candidate, sorted((k, str(v)) for k, v in item.extra.items())])


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.rename(path)


def _wait(path: Path, failed: Path) -> str:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        if failed.exists():
            raise RuntimeError(f"the shared Lean run failed:\n{failed.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {path.name} from the shared Lean run after {WAIT_S:.0f} s")
        time.sleep(0.2)
    return path.read_text()


class LeanRun:
    """The session's Lean batch and CLI runs; results live as files under `root` (shared by workers)."""

    def __init__(self, root: Path, scratch: Path, model_dir: Callable[[], str]) -> None:
        self.root, self.scratch = root, scratch
        self.failed = root / "failed.txt"
        self._items: dict[str, list[VerifyItem]] = {}
        self._thread: threading.Thread | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        root.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(root / "claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another worker runs it
        try:
            self._procs = {name: self._start(name, model_dir()) for name in _COMMANDS}
            items = {name: self.items(name) for name in _SOURCES}
        except BaseException as exc:
            self.close(wait=False, reason=f"{type(exc).__name__}: {exc}")
            raise
        self._thread = threading.Thread(target=self._finish, args=(items, self._procs), name="lean-run", daemon=True)
        self._thread.start()

    def close(self, *, wait: bool, reason: str = "the session that ran Lean stopped early") -> None:
        """`wait`: block until every result is written (other xdist workers may still need them).
        Otherwise (a failed `-x` run) stop the CLI runs and tell any waiting worker, without
        waiting minutes for Lean; its process dies on its own when the output pipe closes."""
        if self._thread is None and not self._procs:
            return
        if wait and self._thread is not None:
            self._thread.join()
            return
        if not self.failed.exists():
            _write(self.failed, reason)
        for proc in self._procs.values():
            proc.kill()

    def _start(self, name: str, model_dir: str) -> subprocess.Popen:
        out = self.root / "commands" / name
        out.mkdir(parents=True)
        argv = _COMMANDS[name](out / "out", model_dir)
        with (
            open(out / "stdout", "w") as so,
            open(out / "stderr", "w") as se,
        ):  # files: a full pipe would stall the child
            return subprocess.Popen(
                argv,
                stdout=so,
                stderr=se,
                text=True,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            )

    def _finish(self, items: dict[str, list[VerifyItem]], procs: dict[str, subprocess.Popen]) -> None:
        try:
            from rsynth.stages.formal import StatementChecker

            flat = [it for its in items.values() for it in its]
            verdicts = iter(StatementChecker(timeout=WAIT_S).verify_batch(flat))
            results = {name: [[item_key(it), next(verdicts).__dict__] for it in its] for name, its in items.items()}
            _write(self.root / "verdicts.json", json.dumps(results))
            for name, proc in procs.items():
                _write(self.root / "commands" / name / "rc", str(proc.wait(timeout=WAIT_S)))
        except BaseException as exc:  # the waiting tests fail with this instead of timing out
            _write(self.failed, f"{type(exc).__name__}: {exc}")
            for proc in procs.values():
                proc.kill()

    def items(self, name: str) -> list[VerifyItem]:
        """The items `name` contributed (recorded once per process, deterministic)."""
        if name not in self._items:
            (self.scratch / name).mkdir(parents=True, exist_ok=True)
            self._items[name] = _SOURCES[name](self.scratch / name)
        return self._items[name]

    def verdicts(self, name: str) -> list[Verdict]:
        """Verdicts for `name`'s items, in order (waits for the batch)."""
        results = json.loads(_wait(self.root / "verdicts.json", self.failed))[name]
        assert [k for k, _ in results] == [item_key(it) for it in self.items(name)], (
            f"{name}: items differ between workers"
        )
        return [Verdict(**v) for _, v in results]

    def command(self, name: str) -> dict[str, Any]:
        """`rc`, `stdout`, `stderr` and `out` (its output dir) of the command `name` (waits for it)."""
        d = self.root / "commands" / name
        rc = int(_wait(d / "rc", self.failed))
        return {"rc": rc, "stdout": (d / "stdout").read_text(), "stderr": (d / "stderr").read_text(), "out": d / "out"}
