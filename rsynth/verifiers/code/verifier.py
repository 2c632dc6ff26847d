"""Run untrusted Python programs against tests in the sandbox: pass | fail | timeout | error.

Four test styles, chosen by `item.extra["style"]` (default "assert"):
- "assert": `reference` is test code: plain `assert` lines (MBPP), or a HumanEval
  `def check(candidate)`, which is then called with `extra["entry_point"]`.
- "io": `reference` is JSON `{"inputs": [[args...], ...], "outputs": [repr, ...], "atol": 0}`:
  the function `entry_point` is called on each input and compared with the expected value, within
  `atol` for floats (1e-6 when outputs are floats and atol is 0, as evalplus does).
  `record_outputs` builds the outputs from a reference solution, also in the sandbox.
- "evalplus": `reference` is JSON `{"task_id", "entry_point", "solution", "inputs", "atol"}` (an
  MBPP+ task, base and plus inputs together; `evalplus_tests` builds it from a row). The expected
  outputs are recorded once per task from the reference solution in the sandbox, then each program
  runs as "io" with evalplus's per-task input types (`mbpp_types.py`) and special oracles. The
  base asserts alone pass wrong programs that the plus inputs catch.
- "stdio": `reference` is JSON `{"inputs": [stdin, ...], "outputs": [stdout, ...]}`; each case runs
  the whole program once, alone in the sandbox, and stdout must match up to trailing whitespace.
  The expected outputs never enter the sandbox, so there is nothing to forge.

Threat model (assert, io, evalplus): the program is hostile and may do anything its sandbox allows.
The tests, the expected outputs and the reference solutions are trusted. The tests and the
comparisons run in a trusted harness (`harness.py`), the program in an interpreter of its own
(`child.py`), started by exec from a harness that made itself non-dumpable. The harness calls
the program's functions over a pipe and sees only the plain values `wire.py` decodes, so the
program cannot read the per-run token, return an object that equals anything, or patch what the
tests use. A pass is the harness printing the token after the last test. One run (one sandbox, two
interpreters) serves all the cases of an item. What the program can still do: answer as it likes
(a lookup table of the test inputs passes, as in any test-based verifier), and shape the helpers a
test calls that are its own functions (HumanEval/38's `encode_cyclic` is the program's, as in
evalplus). Under `--sandbox unsafe-rlimit` the program has the user's own privileges (as root,
CAP_SYS_PTRACE: it can trace the harness), so a pass there is no proof against a hostile program.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsynth.verifiers.base import Verdict, Verifier, VerifyItem
from rsynth.verifiers.code import mbpp_types
from rsynth.verifiers.code.sandbox import Job, Limits, RunResult, Sandbox

# The scratch files of a harness run besides token, spec.json and candidate.py: the trusted harness
# as main.py, the program's side, the wire format and the MBPP+ input types. They are scripts for
# the sandbox's interpreter (stdlib only), read as text here: importing harness would run it.
HARNESS_FILES = {
    name: (Path(__file__).with_name(source)).read_text(encoding="utf-8")
    for name, source in {
        "main.py": "harness.py",
        "child.py": "child.py",
        "wire.py": "wire.py",
        "mbpp_types.py": "mbpp_types.py",
    }.items()
}

EXIT_LOAD_ERROR = 3  # the program itself did not load (syntax error, missing entry point)
EXIT_HARNESS_ERROR = 4  # the harness could not make itself non-dumpable


def _harness_job(program: str, spec: dict[str, Any], hash_seed: int = 0) -> tuple[Job, str]:
    token = secrets.token_hex(16)
    return Job(
        {**HARNESS_FILES, "candidate.py": program, "token": token, "spec.json": json.dumps(spec)},
        site=False,
        hash_seed=hash_seed,
    ), token


def evalplus_tests(row: dict[str, Any]) -> str | None:
    """The "evalplus" test spec of an MBPP+ row (base and plus inputs, reference solution), or
    None when the row lacks them. Inputs stored as JSON text are parsed."""

    def load(value: Any) -> list:
        return json.loads(value) if isinstance(value, str) else list(value or [])

    try:
        inputs = load(row.get("base_input")) + load(row.get("plus_input"))
    except (ValueError, TypeError):
        return None
    if not inputs or not row.get("canonical_solution") or not row.get("entry_point"):
        return None
    solution = (row.get("prompt") or "") + row["canonical_solution"]
    spec = {
        "task_id": row.get("task_id"),
        "entry_point": row["entry_point"],
        "solution": solution,
        "inputs": inputs,
        "atol": float(row.get("atol") or 0),
    }
    return json.dumps(spec, ensure_ascii=False)


def _finished(result: RunResult, token: str) -> tuple[bool, str]:
    """Whether the harness printed its token last, and the payload before it."""
    lines = result.stdout.rstrip("\n").split("\n")
    if result.returncode == 0 and lines and lines[-1] == token:
        return True, "\n".join(lines[:-1])
    return False, ""


def _killed(result: RunResult) -> str | None:
    """Why a run ended without an outcome of its own: its supervisor died, or a signal killed it."""
    if result.crash:
        return result.crash
    rc = result.returncode
    if rc is not None and rc < 0:
        try:
            return f"program killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"program killed by signal {-rc}"
    return None


def _evidence(result: RunResult, **more: Any) -> dict[str, Any]:
    return {
        "returncode": result.returncode,
        "stderr_tail": result.stderr,
        "seconds": round(result.seconds, 3),
        "sandbox": result.backend,
        **more,
    }


class CodeVerifier(Verifier):
    """Verdicts: pass | fail | timeout | error (the program did not load, the tests could not be
    run, or the run was killed: its supervisor died or a signal ended it)."""

    name = "code"

    def __init__(
        self,
        timeout: float = 10.0,
        workers: int = 1,
        memory_mb: int = 1024,
        sandbox: str = "auto",
        backend: str | None = None,
    ) -> None:
        """`sandbox`: auto | bwrap | unshare | unsafe-rlimit (`backend` is its old name). Raises
        `SandboxUnavailable` when no safe backend works and unsafe-rlimit was not asked for."""
        self.timeout = timeout
        self.workers = workers
        limits = Limits(wall_s=timeout, cpu_s=max(1, int(timeout)), memory_mb=memory_mb)
        self.sandbox = Sandbox(limits, backend=backend or sandbox)
        # the backend is part of the version, so every row's provenance and the card name it
        self.version = f"3+sandbox-{self.sandbox.backend}"
        self._expected: dict[str, list[str] | str] = {}  # evalplus outputs per task (or why none), recorded once
        # The trusted reference records its outputs under evalplus's limits (4 GB; a minute for the
        # few MBPP+ tasks whose plus inputs are huge): a task must not fail for its own reference.
        self._recorder = Sandbox(
            Limits(wall_s=max(timeout, 60.0), cpu_s=max(int(timeout), 60), memory_mb=max(memory_mb, 4096)),
            backend=self.sandbox.backend,
        )

    # -- building jobs --------------------------------------------------------------------------
    def _jobs(self, item: VerifyItem) -> list[tuple[Job, str | None]] | Verdict:
        """The sandbox runs one item needs (token None for stdio runs), or its verdict when it
        cannot run at all."""
        if not item.candidate or not item.candidate.strip():
            return Verdict("error", False, {"reason": "empty program"})
        if item.reference is None or not item.reference.strip():
            return Verdict("error", False, {"reason": "no tests"})
        style = item.extra.get("style", "assert")
        entry_point = item.extra.get("entry_point")
        if style == "assert":
            return [
                _harness_job(item.candidate, {"style": "assert", "tests": item.reference, "entry_point": entry_point})
            ]
        try:
            spec = json.loads(item.reference)
            inputs, outputs = spec["inputs"], spec["outputs"]
        except (ValueError, KeyError, TypeError):
            return Verdict("error", False, {"reason": f"{style} tests must be JSON with 'inputs' and 'outputs'"})
        if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
            return Verdict("error", False, {"reason": "'inputs' and 'outputs' must be lists of equal length"})
        if style == "io":
            if not entry_point:
                return Verdict("error", False, {"reason": "io tests need an entry_point"})
            atol = float(spec.get("atol") or item.extra.get("atol") or 0)
            run = {
                "style": "io",
                "inputs": inputs,
                "outputs": outputs,
                "atol": atol,
                "entry_point": entry_point,
                "fix_types": spec.get("fix_types"),
                "oracle": spec.get("oracle"),
            }
            return [_harness_job(item.candidate, run)]
        if style == "stdio":
            return [(Job({"main.py": item.candidate}, stdin=str(case)), None) for case in inputs]
        return Verdict(
            "error", False, {"reason": f"unknown test style {style!r} (expected assert, io, evalplus or stdio)"}
        )

    def _evalplus_as_io(self, items: Sequence[VerifyItem]) -> list[VerifyItem | Verdict]:
        """Evalplus items turned into io items with recorded outputs (the reference solution runs
        once per task in the sandbox); other items unchanged; a task whose reference fails is an
        `error` verdict for its items."""
        specs: dict[int, dict[str, Any]] = {}
        out: list[VerifyItem | Verdict] = list(items)
        for i, item in enumerate(items):
            if item.extra.get("style") != "evalplus" or not item.candidate or not item.candidate.strip():
                continue
            try:
                spec = json.loads(item.reference or "")
                specs[i] = {k: spec[k] for k in ("task_id", "entry_point", "solution", "inputs")} | {
                    "atol": float(spec.get("atol") or 0)
                }
            except (ValueError, KeyError, TypeError):
                out[i] = Verdict(
                    "error",
                    False,
                    {"reason": "evalplus tests must be JSON with task_id, entry_point, solution and inputs"},
                )
        keys = {i: hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest() for i, s in specs.items()}
        todo = {keys[i]: specs[i] for i in specs if keys[i] not in self._expected}
        recorded = self._record(
            [(s["solution"], s["entry_point"], s["inputs"]) for s in todo.values()],
            [s["task_id"] for s in todo.values()],
        )
        self._expected.update(zip(todo, recorded))
        for i, spec in specs.items():
            outputs = self._expected[keys[i]]
            if isinstance(outputs, str):
                out[i] = Verdict(
                    "error",
                    False,
                    {
                        "reason": f"the reference solution of {spec['task_id']} failed on its own tests",
                        "reference_failure": outputs,
                    },
                )
                continue
            io = {
                "inputs": spec["inputs"],
                "outputs": outputs,
                "atol": spec["atol"],
                "fix_types": spec["task_id"],
                "oracle": mbpp_types.oracle(spec["task_id"], spec["entry_point"]),
            }
            out[i] = VerifyItem(json.dumps(io), items[i].candidate, {"style": "io", "entry_point": spec["entry_point"]})
        return out

    # -- judging runs ---------------------------------------------------------------------------
    @staticmethod
    def _judge(item: VerifyItem, runs: list[tuple[Job, str | None]], results: list[RunResult]) -> Verdict:
        expected = json.loads(item.reference or "{}").get("outputs", []) if item.extra.get("style") == "stdio" else []
        for case, ((_, token), result) in enumerate(zip(runs, results)):
            if result.timed_out:
                return Verdict("timeout", False, _evidence(result, case=case))
            killed = _killed(result)
            if killed:
                return Verdict("error", False, _evidence(result, case=case, reason=killed))
            if token is None:  # stdio
                got = "\n".join(line.rstrip() for line in result.stdout.strip().splitlines())
                want = "\n".join(line.rstrip() for line in str(expected[case]).strip().splitlines())
                if result.returncode != 0 or got != want:
                    return Verdict("fail", False, _evidence(result, case=case, stdout_head=result.stdout[:500]))
                continue
            if result.returncode == EXIT_LOAD_ERROR:
                return Verdict("error", False, _evidence(result, reason="program did not load"))
            if result.returncode == EXIT_HARNESS_ERROR:
                return Verdict(
                    "error", False, _evidence(result, reason="the harness could not make itself non-dumpable")
                )
            ok, _ = _finished(result, token)
            if not ok:
                reason = "exited before the tests finished" if result.returncode == 0 else "tests failed"
                return Verdict("fail", False, _evidence(result, reason=reason))
        return Verdict("pass", True, _evidence(results[-1]))

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        resolved = self._evalplus_as_io(items)
        planned = [r if isinstance(r, Verdict) else self._jobs(r) for r in resolved]
        flat = [run for plan in planned if not isinstance(plan, Verdict) for run in plan]
        results = iter(self.sandbox.run_many([job for job, _ in flat], workers=self.workers))
        verdicts = []
        for item, plan in zip(resolved, planned):
            if isinstance(plan, Verdict):
                verdicts.append(plan)
            else:
                verdicts.append(self._judge(item, plan, [next(results) for _ in plan]))
        return verdicts

    def record_outputs(self, solutions: Sequence[tuple[str, str, list[list[Any]]]]) -> list[list[str] | None]:
        """Expected outputs (reprs) of reference solutions, each given as (code, entry_point,
        inputs), computed in the sandbox; None where the reference itself failed."""
        return [None if isinstance(o, str) else o for o in self._record(solutions, [None] * len(solutions))]

    def run_outputs(
        self, programs: Sequence[tuple[str, str, list[list[Any]]]], hash_seed: int = 0
    ) -> list[list[str] | str]:
        """Output reprs of untrusted programs, each given as (code, entry_point, inputs), run in the
        sandbox under this verifier's own limits (not the reference recorder's); or why there are none
        (timeout, the exception's last line). For tasks built from programs (`generate code-tasks`);
        `hash_seed` is the run's PYTHONHASHSEED."""
        return self._record(programs, [None] * len(programs), self.sandbox, hash_seed)

    def _record(
        self,
        solutions: Sequence[tuple[str, str, list[list[Any]]]],
        task_ids: Sequence[str | None],
        sandbox: Sandbox | None = None,
        hash_seed: int = 0,
    ) -> list[list[str] | str]:
        """Outputs per reference solution, or why there are none; MBPP+ task ids restore the
        inputs' Python types first."""
        sandbox = sandbox or self._recorder
        jobs = [
            _harness_job(code, {"style": "record", "inputs": inputs, "entry_point": ep, "fix_types": tid}, hash_seed)
            for (code, ep, inputs), tid in zip(solutions, task_ids)
        ]
        results = sandbox.run_many([job for job, _ in jobs], workers=self.workers)
        outputs: list[list[str] | str] = []
        for (_, token), result in zip(jobs, results):
            ok, payload = _finished(result, token)
            if ok:
                outputs.append(json.loads(payload))
            elif result.timed_out:
                outputs.append(f"timeout after {sandbox.limits.wall_s:g} s")
            elif result.returncode == 0:
                outputs.append("its outputs are larger than a recorded output may be")
            else:
                outputs.append(
                    _killed(result)
                    or (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1][:300]
                )
        return outputs
