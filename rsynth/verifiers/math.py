"""Final-answer equivalence for math, on math-verify, in worker processes with a hard timeout.

math-verify's own timeouts use `signal.alarm`, which breaks in threads (REFERENCE §2), so they are
switched off and each item runs in a worker process that is killed when it overruns.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from importlib.metadata import version

from rsynth.verifiers.base import Verdict, Verifier, VerifyItem


def _check(reference: str, candidate: str) -> tuple[str, str, str]:
    from math_verify import parse, verify

    gold = parse(reference if "$" in reference or "\\boxed" in reference else f"${reference}$", parsing_timeout=None)
    if not gold:
        gold = parse(reference, parsing_timeout=None)
    pred = parse(candidate if "$" in candidate or "\\boxed" in candidate else f"${candidate}$", parsing_timeout=None)
    if not pred:
        pred = parse(candidate, parsing_timeout=None)
    if not gold or not pred:
        return "unparseable", str(gold), str(pred)
    ok = verify(gold, pred, timeout_seconds=None)
    return ("correct" if ok else "incorrect"), str(gold[0]), str(pred[0])


class MathVerifier(Verifier):
    name = "math"
    version = f"math-verify-{version('math-verify')}"

    def __init__(self, timeout: float = 5.0, workers: int = 1) -> None:
        self.timeout = timeout
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        return self._pool

    def _restart(self) -> None:
        if self._pool is not None:
            for p in list(getattr(self._pool, "_processes", {}).values()):
                p.kill()
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        pending = []
        for i, it in enumerate(items):
            if not it.candidate or not it.candidate.strip():
                verdicts[i] = Verdict("unparseable", False, {"reason": "no final answer"})
            elif it.reference is None:
                verdicts[i] = Verdict("error", False, {"reason": "no reference answer"})
            else:
                pending.append(i)
        pool = self._get_pool()
        futures = {i: pool.submit(_check, items[i].reference, items[i].candidate) for i in pending}
        for i, fut in futures.items():
            try:
                status, gold, pred = fut.result(timeout=self.timeout)
                verdicts[i] = Verdict(status, status == "correct", {"reference_parsed": gold, "candidate_parsed": pred})
            except FutureTimeout:
                verdicts[i] = Verdict("timeout", False, {"timeout_s": self.timeout})
                self._restart()
                pool = self._get_pool()
                for j, f in futures.items():
                    if j > i and not f.done():
                        futures[j] = pool.submit(_check, items[j].reference, items[j].candidate)
            except Exception as exc:  # a worker crash is this item's verdict, not the run's
                verdicts[i] = Verdict("error", False, {"reason": f"{type(exc).__name__}: {exc}"[:500]})
                if self._pool is not None and getattr(self._pool, "_broken", False):
                    self._restart()
                    pool = self._get_pool()
        return [v for v in verdicts if v is not None]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
