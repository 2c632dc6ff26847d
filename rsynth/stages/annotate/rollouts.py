"""The rollout service both annotate-prm schedulers use, and the annotate stage's configuration.

`RolloutService` turns a task into its search generator, a rollout request into its prompt, and a
completion into a verified `Rollout` (with one verdict per distinct verifier item). The lock-step
`RoundScheduler` (rsynth.stages.annotate.lockstep) and the event-driven `AsyncScheduler`
(rsynth.stages.annotate.async_scheduler) both build on it, so identical completions give identical rollouts
whichever scheduler sent them; neither scheduler depends on the other.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

from rsynth.annotators import GivenTrace, MathShepherdConfig, OmegaPRMConfig, Rollout
from rsynth.annotators.math_shepherd import math_shepherd_search
from rsynth.annotators.omegaprm import omegaprm_search
from rsynth.answers import DEFAULT_ANSWER_FALLBACK, NO_ANSWER
from rsynth.config import fingerprint
from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams
from rsynth.stages.domains import RolloutChecker, make_checker, no_answer
from rsynth.stages.problem import DEFAULT_INSTRUCTION
from rsynth.verifiers.base import Verifier, VerifyItem


@dataclass
class AnnotateConfig:
    method: str = "omegaprm"
    omegaprm: OmegaPRMConfig = field(default_factory=OmegaPRMConfig)
    math_shepherd: MathShepherdConfig = field(default_factory=MathShepherdConfig)
    n_solutions: int = 1  # math-shepherd from problems: solutions sampled per question
    params: SamplingParams = field(
        default_factory=lambda: SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=2048)
    )
    instruction: str = DEFAULT_INSTRUCTION
    split_mode: str = "auto"
    input_kind: str = "auto"
    domain: str = "math"  # math | code | lean: what a rollout's verdict means (rsynth.stages.domains)
    answer_fallback: str = DEFAULT_ANSWER_FALLBACK  # math: answer extraction chain, shared with `generate solutions`

    def fingerprint(self) -> dict[str, Any]:
        # math run keys stay as they were before the domain field existed
        return fingerprint(
            self, omit_at={"domain": "math"}, split_mode="split", input_kind="kind", answer_fallback="answer"
        )

    def checker(self) -> RolloutChecker:
        return make_checker(self.domain, self.instruction, self.split_mode, self.answer_fallback)


@dataclass
class Task:
    """One question to search, or one given trace to label."""

    id: str
    problem: str
    answer: str
    given: GivenTrace | None
    passthrough: dict[str, Any]


class RolloutService:
    """What both schedulers share: each task's search, the prompt of a request, the parsing and
    verdict of each completion (a verdict cache: each distinct verifier item is verified once) and
    the counters. A scheduler only decides when requests go to the engine."""

    def __init__(self, engine: Engine, verifier: Verifier, config: AnnotateConfig) -> None:
        self.engine = engine
        self.verifier = verifier
        self.config = config
        self.checker = config.checker()
        self.verdict_cache: dict[tuple[str | None, str | None, str], tuple[bool, str]] = {}
        self.stats = {"rounds": 0, "requests": 0, "completions": 0, "verifications": 0, "no_answer": 0}

    def search(self, task: Task, seed: int) -> Generator:
        c = self.config
        if c.method == "omegaprm":
            return omegaprm_search(c.omegaprm, seed, task.given)
        return math_shepherd_search(c.math_shepherd, task.given, c.n_solutions)

    def prompt(self, task: Task, prefix: tuple[str, ...]) -> Prompt:
        return self.checker.prompt(task.problem, task.answer, prefix)

    def parse(self, answer: str, prefix: tuple[str, ...], c: Completion) -> tuple:
        """(verdict-cache key, verifier item, final answer, completion, steps) of one completion; the
        key is None when no answer was found (its own verdict, never sent to the verifier)."""
        item, ans = self.checker.check(answer, prefix, c.text, c.finish_reason)
        key = None if no_answer(self.checker.domain, ans) else item_key(item)
        return key, item, ans, c, self.checker.split(c.text)

    def rollout(self, key, item, ans, c: Completion, steps) -> Rollout:
        """The rollout of a parsed completion, once its verdict is cached."""
        ok, status = (False, NO_ANSWER) if key is None else self.verdict_cache[key]
        return Rollout(steps, c.num_tokens, ans, ok, status)


def draw_params(params: SamplingParams, k: int, draw: int) -> SamplingParams:
    """Sampling for draw `draw` of a prefix: n=k, and for draws after the first a seed derived from
    the draw, so a chunked estimate gets fresh samples (the completion cache and seeded engines
    would otherwise return draw 0's completions again). Draw 0 keeps the run's seed."""
    n = params.with_n(k)
    return n if draw == 0 else replace(n, seed=params.seed + 7919 * draw)


def item_key(item: VerifyItem) -> tuple[str | None, str | None, str]:
    return item.reference, item.candidate, json.dumps(item.extra, sort_keys=True)
