"""Execution decides for code: a program that passes another task's tests solves that task.

A rephrased code task renames the function, rewrites the docstring and changes the examples, so
neither its words nor its name give it away; its behaviour does. For a code row with a reference
solution and a retrieved code item, the item's own tests run against the row's program in the
sandbox (`rsynth.verifiers.code`), with the item's entry point bound to the row's function; when
the row has tests, the item's canonical solution runs against them, with the row's function name
bound to the item's entry point. Passing means the same task; failing means another one. Programs
run only in the sandbox, never in this process.

A rewrite may also reorder a function's parameters (`fewer_chars(b, a)` for `total_match(lst1,
lst2)`): when the plain binding fails and the function takes two or three positional parameters,
the other orders are tried (`total_match = lambda *a: fewer_chars(a[1], a[0])`); any order that
passes all the tests is the same task. Parameters are read with `ast` (parsing, never running).
"""

from __future__ import annotations

import ast
import itertools
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


def arity(program: str, name: str) -> int:
    """Positional parameters of top-level function `name` in `program` (0 when not found or unparsable)."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return 0
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            a = node.args
            return 0 if a.vararg else len(a.posonlyargs) + len(a.args)
    return 0


def orders(n: int) -> list[tuple[int, ...]]:
    """Parameter orders to try for a function of `n` positional parameters: as written first, then
    the others (for two or three parameters; more would be a guess, not a reordering)."""
    if not 2 <= n <= 3:
        return [tuple(range(n))]
    return list(itertools.permutations(range(n)))


def _bind(program: str, name: str, target: str | None, order: tuple[int, ...] | None = None) -> str:
    """`program` with `name` also reachable as `target` (when it differs and is missing), its
    arguments passed in `order` (`name(x, y)` calls `target(y, x)` for order (1, 0))."""
    reordered = order is not None and order != tuple(range(len(order)))
    if target is None or (target == name and not reordered):
        return program
    if not reordered and re.search(rf"^def\s+{re.escape(name)}\s*\(", program, re.MULTILINE):
        return program
    if not reordered:
        return f"{program}\n\n{name} = {target}\n"
    assert order is not None
    args = ", ".join(f"a{i}" for i in range(len(order)))
    call = ", ".join(f"a{i}" for i in order)
    # a new name for the original when the row and the item name their functions alike
    original = f"_rsynth_original_{target}"
    return f"{program}\n\n{original} = {target}\n\n\ndef {name}({args}):\n    return {original}({call})\n"


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
        """`pairs`: (row prompt, row solution, row tests, item key). Each direction (the item's tests
        on the row's program; the item's solution on the row's tests) passes when one parameter
        order passes; a pair fails when a direction that ran fails in every order."""
        jobs = [(i, kind, variants) for i, pair in enumerate(pairs) for kind, variants in self._jobs(*pair)]
        self._run([v for _, _, variants in jobs for v in variants[:1]])  # parameters as written, first
        # other orders when the written one did not pass (failed, or crashed: swapped arguments raise)
        self._run([v for _, _, variants in jobs if self._verdict(variants[:1]) is not True for v in variants[1:]])
        out: list[bool | None] = [None] * len(pairs)
        for i, _, variants in jobs:
            verdict = self._verdict(variants)
            if verdict is False:
                out[i] = False
            elif verdict is True and out[i] is not False:
                out[i] = True
        return out

    def _jobs(self, prompt: str, solution: str | None, tests: str | None, key: Key):
        """(direction, the VerifyItems of its parameter orders, as written first) for one pair."""
        from rsynth.verifiers.base import VerifyItem

        if not key.is_code:
            return
        if solution:
            fn = main_function(solution, prompt)
            if fn is not None:
                yield (
                    "item-tests",
                    [
                        _item_tests(key, _bind(solution, key.entry_point or "", fn, o))
                        for o in orders(arity(solution, fn))
                    ],
                )
        if tests and key.solution:
            called = next((f for f in functions(tests) if f), None) or key.entry_point or ""
            n = arity(key.solution, key.entry_point or "")
            yield (
                "row-tests",
                [
                    VerifyItem(
                        tests,
                        _bind(key.solution, called, key.entry_point, o),
                        {"style": "assert", "entry_point": called},
                    )
                    for o in orders(n)
                ],
            )

    @staticmethod
    def _memo_key(item) -> tuple[str, str | None, str]:
        return (item.candidate or "", item.reference, str(item.extra.get("style")))

    def _run(self, items: list) -> None:
        todo = list({self._memo_key(it): it for it in items if self._memo_key(it) not in self._memo}.values())
        verifier = self._get() if todo else None
        if verifier is None or not todo:
            return
        for item, v in zip(todo, verifier.verify_batch(todo)):
            self._memo[self._memo_key(item)] = True if v.status == "pass" else False if v.status == "fail" else None

    def _verdict(self, variants: list) -> bool | None:
        got = [self._memo.get(self._memo_key(v)) for v in variants if self._memo_key(v) in self._memo]
        if any(g is True for g in got):
            return True
        if got and len(got) == len(variants) and all(g is False for g in got):
            return False
        return None

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None
