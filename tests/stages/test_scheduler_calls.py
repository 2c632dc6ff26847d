"""The round scheduler's batching contract, counted: one engine call per distinct k per round."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rsynth.annotators import GivenTrace, MathShepherdConfig, OmegaPRMConfig
from rsynth.engines.base import Completion, Prompt, SamplingParams
from rsynth.stages.annotate.lockstep import RoundScheduler
from rsynth.stages.annotate.rollouts import AnnotateConfig, Task
from rsynth.verifiers.math import MathVerifier
from tests.formal_helpers import ScriptedEngine


class CountingEngine(ScriptedEngine):
    """A scripted engine that records each generate call as (prompts, n)."""

    def __init__(self, script) -> None:
        super().__init__(script)
        self.calls: list[tuple[int, int]] = []

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append((len(prompts), params.n))
        return super()._generate(prompts, params)


class RoundCounter(RoundScheduler):
    """Notes, per round, the distinct k pending and the engine calls the round made."""

    rounds_seen: list[tuple[int, int]]

    def _serve(self, tasks, pending):
        before = len(self.engine.calls)
        replies = super()._serve(tasks, pending)
        ks = {r.k for reqs in pending.values() for r in reqs}
        self.rounds_seen.append((len(ks), len(self.engine.calls) - before))
        return replies


def _tasks(n: int, given: bool) -> list[Task]:
    steps = ("Step 1: 3 + 4 = 7.", "Step 2: The answer is: 8")
    return [
        Task(f"q{i}", f"What is 3 + 4? (variant {i})", "7", GivenTrace(steps, False, "8") if given else None, {})
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(timeout=5.0) as v:
        yield v


# (method config, given traces?, tasks): every live search's requests of one round share one call per k
CASES = [
    (AnnotateConfig(method="omegaprm", omegaprm=OmegaPRMConfig(k0=4, k=2, max_search=2, rollout_budget=40)), False, 5),
    (AnnotateConfig(method="omegaprm", omegaprm=OmegaPRMConfig(k0=4, k=2, max_search=2, rollout_budget=40)), True, 4),
    (AnnotateConfig(method="math-shepherd", math_shepherd=MathShepherdConfig(n=3)), True, 6),
]


@pytest.mark.parametrize(
    ("config", "given", "n_tasks"), CASES, ids=["omegaprm-problems", "omegaprm-traces", "math-shepherd-traces"]
)
def test_one_engine_call_per_k_per_round(config, given, n_tasks, verifier):
    # half the rollouts right, half wrong: searches branch, so rounds carry requests of several searches
    engine = CountingEngine(lambda p: ["The answer is: 7", "Step 3: so. The answer is: 8"])
    scheduler = RoundCounter(engine, verifier, config)
    scheduler.rounds_seen = []
    results = scheduler.run(_tasks(n_tasks, given))
    assert len(results) == n_tasks
    assert len(scheduler.rounds_seen) == scheduler.stats["rounds"] >= 1
    for distinct_k, calls in scheduler.rounds_seen:
        assert calls == distinct_k  # one engine call per distinct k, never one per search or request
    assert sum(prompts for prompts, _ in engine.calls) == scheduler.stats["requests"]
    assert sum(prompts * n for prompts, n in engine.calls) == scheduler.stats["completions"]
    # the first round carries one request from every search: batched into a single call
    first_prompts, _ = engine.calls[0]
    assert first_prompts >= n_tasks
