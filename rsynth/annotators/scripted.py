"""A controlled policy with planted first errors, for tests, benchmarks and scheduler dry runs.

Solutions have a fixed number of steps; a step's text says whether it is a mistake. A rollout from a
prefix with no mistake in it reaches the right answer with probability p, from one with a mistake
with probability q (lucky recovery) -- or, with `decline="gradual"`, with a chance that falls from p
towards q by half per step after the mistake (an error that only hurts later). Wrong rollouts from
clean prefixes get a first error planted at a uniformly random continuation step, so the truth is
known for every trace a search produces. A prefix that is already a whole solution continues with
nothing, keeping its own verdict.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rsynth.annotators.base import GivenTrace, Prefix, Replies, Rollout, RolloutRequest

BAD = ": bad"


def step_text(index: int, good: bool, tag: str) -> str:
    return f"step {index} [{tag}]" + (": ok" if good else BAD)


def planted_trace(num_steps: int, first_error: int | None) -> GivenTrace:
    """A solution of `num_steps` steps whose first mistake is `first_error` (None: a correct one)."""
    steps = tuple(step_text(i, i != first_error, "given") for i in range(num_steps))
    correct = first_error is None
    return GivenTrace(steps, correct, "right" if correct else "wrong")


def true_first_error(steps: Prefix) -> int:
    return next((i for i, s in enumerate(steps) if s.endswith(BAD)), -1)


@dataclass
class ScriptedPolicy:
    num_steps: int
    p: float = 0.7
    q: float = 0.02
    seed: int = 0
    tokens_per_step: int = 30
    decline: str = "step"  # step | gradual: how the success chance drops after the first mistake
    batches: list[list[RolloutRequest]] = field(default_factory=list)  # every batch served, for inspection
    known: dict[Prefix, int] = field(default_factory=dict)  # real step texts (e.g. ProcessBench's) -> true first error

    def __post_init__(self) -> None:
        if self.decline not in ("step", "gradual"):
            raise ValueError(f"decline must be step or gradual, got {self.decline!r}")
        self.rng = random.Random(self.seed)

    def know(self, steps: Prefix, first_error: int) -> ScriptedPolicy:
        """Serve a real given trace: its prefixes' truth comes from its label, not from step texts."""
        for i in range(1, len(steps) + 1):
            self.known[steps[:i]] = first_error if 0 <= first_error < i else -1
        return self

    def error_at(self, prefix: Prefix) -> int:
        """The true first error of `prefix`: from a known trace's label for its known head, else read
        from the planted step texts."""
        head = next((i for i in range(len(prefix), 0, -1) if prefix[:i] in self.known), 0)
        if head and self.known[prefix[:head]] >= 0:
            return self.known[prefix[:head]]
        rest = true_first_error(prefix[head:])
        return rest + head if rest >= 0 else -1

    def success(self, prefix: Prefix) -> float:
        """The chance that a rollout from `prefix` reaches the right answer."""
        e = self.error_at(prefix)
        if e < 0:
            return self.p
        return self.q if self.decline == "step" else self.q + (self.p - self.q) * 0.5 ** (len(prefix) - e)

    def __call__(self, requests: list[RolloutRequest]) -> Replies:
        self.batches.append(list(requests))
        return [[self.rollout(r.prefix) for _ in range(r.k)] for r in requests]

    def rollout(self, prefix: Prefix) -> Rollout:
        clean = self.error_at(prefix) < 0
        rest = max(self.num_steps - len(prefix), 0)
        if rest == 0:
            correct, steps = clean, ()
        else:
            correct = self.rng.random() < self.success(prefix)
            error_at = self.rng.randrange(rest) if clean and not correct else None
            tag = f"{self.rng.randrange(16**6):06x}"
            steps = tuple(step_text(len(prefix) + j, j != error_at, tag) for j in range(rest))
        return Rollout(
            steps,
            self.tokens_per_step * len(steps),
            "right" if correct else "wrong",
            correct,
            "correct" if correct else "incorrect",
        )
