"""The lock-step scheduler (`--scheduler lockstep`): a batch of searches, one engine call per round and k.

Each question (or given trace) in a batch gets its own search generator. Every round, the scheduler
collects the requests all live searches are waiting on, sends them as one `generate` call per
distinct k (n=k per prefix, through the on-disk completion cache), verifies the distinct final
answers once, and sends each search its rollouts. The searches never learn which engine served them.
The event-driven `AsyncScheduler` (async_scheduler.py) shares the same `RolloutService`, so both
write the same rows.
"""

from __future__ import annotations

from rsynth.annotators import Rollout, RolloutRequest, SearchResult
from rsynth.stages.annotate.rollouts import RolloutService, Task, draw_params


class RoundScheduler(RolloutService):
    """Runs a batch of searches to completion, one batched engine call per round and k."""

    def run(self, tasks: list[Task]) -> list[SearchResult]:
        results: list[SearchResult | None] = [None] * len(tasks)
        pending: dict[int, list[RolloutRequest]] = {}
        gens = {}
        for i, task in enumerate(tasks):
            gens[i] = self.search(task, self.config.params.seed)
            self._advance(i, gens, pending, results, None)
        while pending:
            self.stats["rounds"] += 1
            replies = self._serve(tasks, pending)
            current, pending = pending, {}
            for i in current:
                self._advance(i, gens, pending, results, replies[i])
        return [r for r in results if r is not None]

    @staticmethod
    def _advance(i, gens, pending, results, reply) -> None:
        try:
            pending[i] = next(gens[i]) if reply is None else gens[i].send(reply)
        except StopIteration as stop:
            results[i] = stop.value

    def _serve(self, tasks: list[Task], pending: dict[int, list[RolloutRequest]]) -> dict[int, list[list[Rollout]]]:
        by_k: dict[tuple[int, int], list[tuple[int, int, RolloutRequest]]] = {}
        for i, reqs in pending.items():
            for j, r in enumerate(reqs):
                by_k.setdefault((r.k, r.draw), []).append((i, j, r))
        replies: dict[int, list[list[Rollout]]] = {i: [[] for _ in reqs] for i, reqs in pending.items()}
        for k, draw in sorted(by_k):
            entries = by_k[k, draw]
            prompts = [self.prompt(tasks[i], r.prefix) for i, _, r in entries]
            completions = self.engine.generate(prompts, draw_params(self.config.params, k, draw))
            self.stats["requests"] += len(entries)
            self.stats["completions"] += len(entries) * k
            rollouts = self._rollouts(tasks, entries, completions)
            for (i, j, _), ros in zip(entries, rollouts):
                replies[i][j] = ros
        return replies

    def _rollouts(self, tasks, entries, completions) -> list[list[Rollout]]:
        """Split and verify every completion; each distinct verifier item is verified once."""
        parsed = []
        for (i, _, r), comps in zip(entries, completions):
            for c in comps:
                parsed.append(self.parse(tasks[i].answer, r.prefix, c))
        self.stats["no_answer"] += sum(key is None for key, *_ in parsed)
        todo = {key: item for key, item, *_ in parsed if key is not None and key not in self.verdict_cache}
        if todo:
            keys = sorted(todo, key=str)
            verdicts = self.verifier.verify_batch([todo[key] for key in keys])
            self.stats["verifications"] += len(keys)
            for key, v in zip(keys, verdicts):
                self.verdict_cache[key] = (v.ok, v.status)
        it = iter(parsed)
        out = []
        for _, comps in zip(entries, completions):
            out.append([self.rollout(*next(it)) for _ in comps])
        return out
