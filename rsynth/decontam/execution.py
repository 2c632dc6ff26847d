"""Execution decides for code: a program that passes another task's tests solves that task.

A rephrased code task renames the function, rewrites the docstring and changes the examples, so
neither its words nor its name give it away; its behaviour does. For a code row with a reference
solution and a retrieved code item, the item's own tests run against the row's program in the
sandbox (`rsynth.verifiers.code`), with the item's entry point bound to the row's function; when
the row has tests, the item's canonical solution runs against them, with the row's function name
bound to the item's entry point. Passing means the same task; failing means another one. Programs
run only in the sandbox, never in this process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rsynth.decontam.keys import Key
from rsynth.decontam.signature import functions

_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


def main_function(solution: str, prompt: str) -> str | None:
    """The function a solution provides: the one its prompt asks for when it defines it, else its
    last top-level function (helpers usually come first)."""
    defined = _DEF.findall(solution)
    if not defined:
        return None
    asked = [f for f in functions(prompt) if f in defined]
    return asked[0] if asked else defined[-1]


def _bind(program: str, name: str, target: str | None) -> str:
    """`program` with `name` also reachable as... `target` bound to it (when it differs and is missing)."""
    if target is None or target == name or re.search(rf"^def\s+{re.escape(name)}\s*\(", program, re.MULTILINE):
        return program
    return f"{program}\n\n{name} = {target}\n"


def _item_tests(key: Key, program: str):
    """The item's tests for `program`: MBPP+ inputs with outputs recorded from the canonical solution
    (evalplus style) where the key has them, else the item's assert tests."""
    import json

    from rsynth.verifiers.base import VerifyItem

    if key.inputs:
        spec = {
            "task_id": key.task_id,
            "entry_point": key.entry_point,
            "solution": key.solution,
            "inputs": json.loads(key.inputs),
            "atol": key.atol,
        }
        return VerifyItem(json.dumps(spec), program, {"style": "evalplus"})
    return VerifyItem(key.tests, program, {"style": "assert", "entry_point": key.entry_point})


class ExecutionChecker:
    """Runs (row, item) pairs in the sandbox, batched; a verdict per pair: True (same behaviour),
    False (fails the other's tests), None (could not run: no sandbox, no tests, an error)."""

    def __init__(self, timeout: float = 5.0, workers: int = 2) -> None:
        self.timeout = timeout
        self.workers = workers
        self._verifier = None
        self.unavailable: str | None = None
        self._memo: dict[tuple[str, str | None, str], bool | None] = {}

    def _get(self):
        if self._verifier is None and self.unavailable is None:
            from rsynth.verifiers.code import CodeVerifier

            try:
                self._verifier = CodeVerifier(timeout=self.timeout, workers=self.workers)
            except Exception as exc:  # no safe sandbox here: execution cannot decide, the other rules do
                self.unavailable = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return self._verifier

    def check(self, pairs: Sequence[tuple[str, str | None, str | None, Key]]) -> list[bool | None]:
        """`pairs`: (row prompt, row solution, row tests, item key)."""
        from rsynth.verifiers.base import VerifyItem

        out: list[bool | None] = [None] * len(pairs)
        jobs: list[tuple[int, str, VerifyItem]] = []
        for i, (prompt, solution, tests, key) in enumerate(pairs):
            if not key.is_code:
                continue
            if solution:
                fn = main_function(solution, prompt)
                if fn is not None:
                    program = _bind(solution, key.entry_point or "", fn)
                    jobs.append((i, "item-tests", _item_tests(key, program)))
            if tests and key.solution:
                called = next((f for f in functions(tests) if f), None)
                program = _bind(key.solution, called or "", key.entry_point)
                jobs.append(
                    (
                        i,
                        "row-tests",
                        VerifyItem(tests, program, {"style": "assert", "entry_point": called or key.entry_point}),
                    )
                )
        todo = [
            (i, kind, item) for i, kind, item in jobs if (item.candidate or "", item.reference, kind) not in self._memo
        ]
        verifier = self._get() if todo else None
        if verifier is not None and todo:
            verdicts = verifier.verify_batch([item for _, _, item in todo])
            for (_, kind, item), v in zip(todo, verdicts):
                self._memo[(item.candidate or "", item.reference, kind)] = (
                    True if v.status == "pass" else False if v.status == "fail" else None
                )
        for i, kind, item in jobs:
            verdict = self._memo.get((item.candidate or "", item.reference, kind))
            if verdict is False:
                out[i] = False
            elif verdict is True and out[i] is not False:
                out[i] = True
        return out

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None
