"""Run untrusted Python programs against tests in the sandbox: pass | fail | timeout | error.

Three test styles, chosen by `item.extra["style"]` (default "assert"):
- "assert": `reference` is test code run in the program's namespace: plain `assert` lines (MBPP),
  or a HumanEval `def check(candidate)`, which is then called with `extra["entry_point"]`.
- "io": `reference` is JSON `{"inputs": [[args...], ...], "outputs": [repr, ...], "atol": 0}`
  (MBPP+ / evalplus): the function `entry_point` is called on each input and compared with the
  expected value, within `atol` for floats. `record_outputs` builds the outputs from a reference
  solution, also in the sandbox.
- "stdio": `reference` is JSON `{"inputs": [stdin, ...], "outputs": [stdout, ...]}`; each case runs
  the whole program once, and stdout must match up to trailing whitespace.

A program "passes" only if the harness reaches its end and prints a per-run random token after the
tests: a program that calls `os._exit(0)` halfway, or prints "OK", cannot fake a pass. The harness
reads the token, the tests and the expected outputs into memory and deletes their files before the
program is loaded, so the program cannot read the expected answers off the disk either.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from rsynth.verifiers.base import Verdict, Verifier, VerifyItem
from rsynth.verifiers.sandbox import Job, Limits, RunResult, Sandbox

EXIT_LOAD_ERROR = 3  # the program itself did not load (syntax error, missing entry point)

HARNESS = r'''
import ast, copy, json, math, os, sys, traceback

def _take(name):
    with open(name, encoding="utf-8") as fh:
        text = fh.read()
    os.remove(name)
    return text

_token = _take("token")
_spec = json.loads(_take("spec.json"))
_out = os.dup(1)
os.dup2(2, 1)  # the program's prints go to stderr; only the harness writes the real stdout

def _close(got, want, atol):
    if atol and isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return math.isclose(got, want, rel_tol=0.0, abs_tol=atol) or (math.isnan(got) and math.isnan(want))
    if atol and isinstance(want, (list, tuple)) and type(got) is type(want) and len(got) == len(want):
        return all(_close(g, w, atol) for g, w in zip(got, want))
    return got == want

def _expected(text):
    try:
        return ast.literal_eval(text), False
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text, True  # e.g. nan or an object repr: compare reprs instead

_ns = {"__name__": "__candidate__"}
try:
    with open("candidate.py", encoding="utf-8") as _fh:
        exec(compile(_fh.read(), "candidate.py", "exec"), _ns)
    _fn = _ns[_spec["entry_point"]] if _spec.get("entry_point") and _spec["style"] != "assert" else None
except BaseException:
    traceback.print_exc()
    os._exit(3)

_payload = ""
if _spec["style"] == "assert":
    exec("import math", _ns)  # MBPP asserts use math.isclose without importing it
    exec(compile(_spec["tests"], "tests.py", "exec"), _ns)
    if _spec.get("entry_point") and "def check" in _spec["tests"]:
        _ns["check"](_ns[_spec["entry_point"]])
elif _spec["style"] == "record":
    _payload = json.dumps([repr(_fn(*copy.deepcopy(args))) for args in _spec["inputs"]])
else:
    for _i, (_args, _want) in enumerate(zip(_spec["inputs"], _spec["outputs"])):
        _got = _fn(*copy.deepcopy(_args))
        _value, _as_repr = _expected(_want)
        if not (repr(_got) == _want if _as_repr else _close(_got, _value, _spec.get("atol") or 0)):
            print(f"case {_i}: expected {_want[:200]}, got {repr(_got)[:200]}", file=sys.stderr)
            os._exit(1)
os.write(_out, (_payload + "\n" + _token + "\n").encode())
'''


def _harness_job(program: str, spec: dict[str, Any]) -> tuple[Job, str]:
    token = secrets.token_hex(16)
    files = {"main.py": HARNESS, "candidate.py": program, "token": token, "spec.json": json.dumps(spec)}
    return Job(files), token


def _finished(result: RunResult, token: str) -> tuple[bool, str]:
    """Whether the harness printed its token last, and the payload before it."""
    lines = result.stdout.rstrip("\n").split("\n")
    if result.returncode == 0 and lines and lines[-1] == token:
        return True, "\n".join(lines[:-1])
    return False, ""


def _evidence(result: RunResult, **more: Any) -> dict[str, Any]:
    return {
        "returncode": result.returncode,
        "stderr_tail": result.stderr,
        "seconds": round(result.seconds, 3),
        "sandbox": result.backend,
        **more,
    }


class CodeVerifier(Verifier):
    """Verdicts: pass | fail | timeout | error (the program or the tests could not be loaded)."""

    name = "code"
    version = "1"

    def __init__(
        self,
        timeout: float = 10.0,
        workers: int = 1,
        memory_mb: int = 1024,
        backend: str = "auto",
    ) -> None:
        self.timeout = timeout
        self.workers = workers
        limits = Limits(wall_s=timeout, cpu_s=max(1, int(timeout)), memory_mb=memory_mb)
        self.sandbox = Sandbox(limits, backend=backend)

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
            return [_harness_job(item.candidate, {"style": "assert", "tests": item.reference, "entry_point": entry_point})]
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
            return [_harness_job(item.candidate, {"style": "io", "inputs": inputs, "outputs": outputs, "atol": atol, "entry_point": entry_point})]
        if style == "stdio":
            return [(Job({"main.py": item.candidate}, stdin=str(case)), None) for case in inputs]
        return Verdict("error", False, {"reason": f"unknown test style {style!r} (expected assert, io or stdio)"})

    # -- judging runs ---------------------------------------------------------------------------
    @staticmethod
    def _judge(item: VerifyItem, runs: list[tuple[Job, str | None]], results: list[RunResult]) -> Verdict:
        expected = json.loads(item.reference or "{}").get("outputs", []) if item.extra.get("style") == "stdio" else []
        for case, ((_, token), result) in enumerate(zip(runs, results)):
            if result.timed_out:
                return Verdict("timeout", False, _evidence(result, case=case))
            if token is None:  # stdio
                got = "\n".join(line.rstrip() for line in result.stdout.strip().splitlines())
                want = "\n".join(line.rstrip() for line in str(expected[case]).strip().splitlines())
                if result.returncode != 0 or got != want:
                    return Verdict("fail", False, _evidence(result, case=case, stdout_head=result.stdout[:500]))
                continue
            if result.returncode == EXIT_LOAD_ERROR:
                return Verdict("error", False, _evidence(result, reason="program did not load"))
            ok, _ = _finished(result, token)
            if not ok:
                reason = "exited before the tests finished" if result.returncode == 0 else "tests failed"
                return Verdict("fail", False, _evidence(result, reason=reason))
        return Verdict("pass", True, _evidence(results[-1]))

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        planned = [self._jobs(item) for item in items]
        flat = [run for plan in planned if not isinstance(plan, Verdict) for run in plan]
        results = iter(self.sandbox.run_many([job for job, _ in flat], workers=self.workers))
        verdicts = []
        for item, plan in zip(items, planned):
            if isinstance(plan, Verdict):
                verdicts.append(plan)
            else:
                verdicts.append(self._judge(item, plan, [next(results) for _ in plan]))
        return verdicts

    def record_outputs(self, solutions: Sequence[tuple[str, str, list[list[Any]]]]) -> list[list[str] | None]:
        """Expected outputs (reprs) of reference solutions, each given as (code, entry_point,
        inputs), computed in the sandbox; None where the reference itself failed."""
        jobs = [_harness_job(code, {"style": "record", "inputs": inputs, "entry_point": ep}) for code, ep, inputs in solutions]
        results = self.sandbox.run_many([job for job, _ in jobs], workers=self.workers)
        outputs: list[list[str] | None] = []
        for (_, token), result in zip(jobs, results):
            ok, payload = _finished(result, token)
            outputs.append(json.loads(payload) if ok else None)
        return outputs
