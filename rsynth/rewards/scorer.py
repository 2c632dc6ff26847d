"""Scoring batches of rollouts with rsynth's verifiers: the one engine behind every trainer adapter.

Why it is built this way:
- Verifiers are long-lived: the math verifier keeps `workers` processes (`HardTimeoutPool`) and the
  code verifier runs at most `workers` sandboxes at once, so a batch of 1,024 rollouts is spread over
  those workers instead of starting 1,024 processes; every item still has its hard timeout.
- Verdicts are cached by (domain, ground truth, reduced answer) (`candidates.prepare`): GRPO samples
  many completions per prompt and they often agree, so most of a group is verified once.
- Trainers call from many threads (verl's reward manager runs each sample's `compute_score` in a
  thread pool; the HTTP server answers requests on threads). `Batcher` gathers concurrent calls into
  one verifier batch on a single thread, which also keeps the verifiers single-user.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from rsynth.rewards.candidates import Prepared, Settled, detect_domain, prepare
from rsynth.rewards.params import RewardParams
from rsynth.verifiers.base import Verdict, Verifier
from rsynth.verifiers.lean_params import LeanParams

HEDGED = "hedged"


@dataclass(frozen=True)
class Rollout:
    """One completion to score: its ground truth and, when known, its domain (else read from the
    ground truth)."""

    ground_truth: Any
    completion: str
    domain: str | None = None


@dataclass(frozen=True)
class Reward:
    score: float
    status: str  # the verdict (correct, pass, proved, incorrect, fail, timeout, ...), no_answer, hedged or error
    reason: str = ""
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "status": self.status, "reason": self.reason}


@dataclass
class _Cache:
    size: int
    entries: OrderedDict = field(default_factory=OrderedDict)
    hits: int = 0
    misses: int = 0

    def get(self, key: tuple[str, ...]) -> Verdict | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return found

    def put(self, key: tuple[str, ...], verdict: Verdict) -> None:
        if self.size <= 0:
            return
        self.entries[key] = verdict
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class RewardScorer:
    """`score(rollouts) -> [Reward]`, thread-safe (one batch at a time); `close()` stops workers."""

    def __init__(self, params: RewardParams | None = None, lean: LeanParams | None = None) -> None:
        self.params = params or RewardParams()
        self.lean = lean or LeanParams()
        self._verifiers: dict[str, Verifier] = {}
        self._cache = _Cache(self.params.cache_size)
        self._lock = threading.Lock()

    # -- verifiers ------------------------------------------------------------------------------
    def _verifier(self, domain: str) -> Verifier:
        if domain not in self._verifiers:
            p = self.params
            if domain == "code":
                from rsynth.verifiers.code import CodeVerifier

                self._verifiers[domain] = CodeVerifier(timeout=p.code_timeout, workers=p.workers, sandbox=p.sandbox)
            elif domain == "lean":
                self._verifiers[domain] = self.lean.verifier()
            else:
                from rsynth.verifiers.math import MathVerifier

                self._verifiers[domain] = MathVerifier(timeout=p.math_timeout, workers=p.workers)
        return self._verifiers[domain]

    # -- scoring --------------------------------------------------------------------------------
    def score(self, rollouts: Sequence[Rollout]) -> list[Reward]:
        with self._lock:
            return self._score(rollouts)

    def _score(self, rollouts: Sequence[Rollout]) -> list[Reward]:
        p = self.params
        prepared: list[Prepared | Settled] = []
        for r in rollouts:
            truth = "" if r.ground_truth is None else r.ground_truth
            domain = detect_domain(truth if isinstance(truth, str) else str(truth), r.domain)
            prepared.append(prepare(domain, truth, r.completion or "", p.answer_rules))
        verdicts: dict[tuple[str, ...], Verdict] = {}
        cached: set[tuple[str, ...]] = set()
        todo: dict[str, dict[tuple[str, ...], Prepared]] = {}
        for prep in prepared:
            if not isinstance(prep, Prepared) or prep.key in verdicts or prep.key in todo.get(prep.domain, {}):
                continue
            hit = self._cache.get(prep.key)
            if hit is not None:
                verdicts[prep.key] = hit
                cached.add(prep.key)
            else:
                todo.setdefault(prep.domain, {})[prep.key] = prep
        for domain, batch in todo.items():
            results = self._verifier(domain).verify_batch([b.item for b in batch.values()])
            for key, verdict in zip(batch, results):
                verdicts[key] = verdict
                self._cache.put(key, verdict)
        return [self._reward(prep, r.completion or "", verdicts, cached) for prep, r in zip(prepared, rollouts)]

    def _reward(
        self,
        prep: Prepared | Settled,
        completion: str,
        verdicts: dict[tuple[str, ...], Verdict],
        cached: set[tuple[str, ...]],
    ) -> Reward:
        if isinstance(prep, Settled):
            return Reward(self._shaped(0.0, prep.marked, completion), prep.status, prep.reason)
        verdict = verdicts[prep.key]
        reason = str(verdict.evidence.get("reason") or "")
        if reason == HEDGED:  # offering several answers is never rewarded, format term included
            return Reward(0.0, HEDGED, "several different answers", prep.key in cached)
        base = 1.0 if verdict.ok else 0.0
        return Reward(self._shaped(base, prep.marked, completion), verdict.status, reason, prep.key in cached)

    def _shaped(self, base: float, marked: bool, completion: str) -> float:
        """The optional format and length terms (both 0 by default: the reward is then 1/0)."""
        p = self.params
        score = base + (p.format_weight if marked else 0.0)
        if p.length_limit and p.length_penalty and len(completion) > p.length_limit:
            score -= p.length_penalty * min(1.0, (len(completion) - p.length_limit) / p.length_limit)
        return score

    def stats(self) -> dict[str, int]:
        return {
            "cache hits": self._cache.hits,
            "cache misses": self._cache.misses,
            "cached verdicts": len(self._cache.entries),
        }

    def close(self) -> None:
        with self._lock:
            for v in self._verifiers.values():
                v.close()
            self._verifiers = {}

    def __enter__(self) -> RewardScorer:  # noqa: PYI034 -- the class is not subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Batcher:
    """Gathers rollouts submitted from many threads into one `scorer.score` call at a time.

    The worker thread takes everything queued, waits `linger_s` for stragglers (the other samples of
    a verl batch arrive within microseconds of each other), scores the lot, and answers each caller."""

    def __init__(self, scorer: RewardScorer, *, linger_s: float = 0.005, max_batch: int = 4096) -> None:
        self.scorer = scorer
        self.linger_s, self.max_batch = linger_s, max_batch
        self._queue: list[tuple[list[Rollout], Future]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rsynth-reward-batcher", daemon=True)
        self._thread.start()

    def submit(self, rollouts: Sequence[Rollout]) -> Future:
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the reward batcher is closed")
            self._queue.append((list(rollouts), fut))
            self._cond.notify()
        return fut

    def score(self, rollouts: Sequence[Rollout]) -> list[Reward]:
        return self.submit(rollouts).result()

    def _take(self) -> list[tuple[list[Rollout], Future]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self.linger_s
            while not self._closed and sum(len(r) for r, _ in self._queue) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken, size = [], 0
            while self._queue and (not taken or size + len(self._queue[0][0]) <= self.max_batch):
                job = self._queue.pop(0)
                taken.append(job)
                size += len(job[0])
            return taken

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            flat = [r for rollouts, _ in jobs for r in rollouts]
            try:
                rewards = self.scorer.score(flat)
            except BaseException as exc:  # noqa: BLE001 -- a broken verifier fails its callers, not the thread
                for _, fut in jobs:
                    fut.set_exception(exc)
                continue
            start = 0
            for rollouts, fut in jobs:
                fut.set_result(rewards[start : start + len(rollouts)])
                start += len(rollouts)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)
