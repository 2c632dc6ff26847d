"""The engine-agnostic contract between annotation searches and whatever serves their rollouts.

A search is a generator: it yields the rollout requests it can use right now and is sent back the
rollouts. It never sees an engine, a prompt template or a verifier, so one scheduler can interleave
hundreds of searches and serve all their pending requests in one engine call, and tests can drive the
very same code with a scripted policy. Answer extraction and verification happen in the driver
(the final answer comes from prefix + continuation), so a search only ever reads `Rollout.correct`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rsynth.annotators.labels import derive_labels

Prefix = tuple[str, ...]


@dataclass(frozen=True)
class RolloutRequest:
    """Ask for `k` independent completions of the solution prefix (empty = from the question).

    Always served as ONE engine request with n=k (one prefill, prefix cache) -- never k copies.
    `draw` numbers the requests a search makes for the SAME prefix (a sequential estimate asks in
    chunks): a server must give different draws independent samples (e.g. by deriving the sampling
    seed from it), because a seeded engine or a completion cache would otherwise send the first
    chunk's completions again.
    """

    prefix: Prefix
    k: int
    draw: int = 0

    def __post_init__(self) -> None:
        if self.k < 1 or self.draw < 0:
            raise ValueError(f"a rollout request needs k >= 1 and draw >= 0, got k={self.k}, draw={self.draw}")


@dataclass(frozen=True)
class Rollout:
    steps: Prefix  # the continuation's steps, split by the scheduler
    num_tokens: int  # generated tokens of the continuation only
    final_answer: str | None  # extracted from prefix + continuation
    correct: bool  # verifier verdict ok
    status: str  # correct | incorrect | no_answer | unparseable | timeout | error


@dataclass(frozen=True)
class GivenTrace:
    """An existing step-split solution to label instead of sampling one from the question."""

    steps: Prefix
    correct: bool
    final_answer: str | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a given trace needs at least one step")


@dataclass
class Counters:
    """What a search cost: engine requests (one per prefix per yield), completions and tokens."""

    requests: int = 0
    completions: int = 0
    generated_tokens: int = 0


@dataclass
class TreeNode:
    """One estimated prefix; field names follow TREE_SCHEMA so rows need no renaming."""

    prefix_steps: Prefix
    mc: float
    k: int
    correct: int
    visits: int
    depth: int
    alive: bool | None = None  # the search's decision "still right?" (OmegaPRM); None where it makes none


@dataclass
class LabelledTrace:
    """A solution with its per-step estimates and derived labels (keys of `labels.derive_labels`)."""

    steps: Prefix
    final_answer: str | None
    correct: bool
    labels: dict[str, Any]

    @property
    def step_mc(self) -> list[float | None]:
        return self.labels["step_mc"]

    @property
    def first_error(self) -> int:
        return self.labels["first_error"]


@dataclass
class SearchResult:
    outcome: str  # searched | all_correct | all_wrong | labelled
    traces: list[LabelledTrace] = field(default_factory=list)
    nodes: list[TreeNode] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    stop_reason: str | None = None  # why a pool search ended: max_search | budget | pool_empty


class Batch(list):
    """The requests a search needs now (a plain list to drivers that ignore the rest), plus `likely`:
    requests it will probably make next -- e.g. both possible next bisection probes.

    A driver may serve `likely` requests early with slots an engine would otherwise leave idle
    (rsynth.stages.annotate.async_scheduler's prefetch). They are hints, never answers: the search still asks for
    each one when it needs it, so its result does not depend on whether a hint was used. That only
    holds for drivers whose replies are a pure function of the request (request-seeded engines).
    """

    likely: tuple[RolloutRequest, ...] = ()


Replies = list[list[Rollout]]
Search = Generator[Batch, Replies, SearchResult]
Policy = Callable[[list[RolloutRequest]], Replies]


def ask(
    requests: Sequence[RolloutRequest], counters: Counters, likely: Sequence[RolloutRequest] = ()
) -> Generator[Batch, Replies, Replies]:
    """Yield `requests` as one batch (use with `yield from`) and return one rollout list per request.

    Identical prefixes (of the same draw) in one batch are merged into one request with the largest
    k, and each asker gets the first k of the shared rollouts: they estimate the same quantity, so
    sampling it twice would only cost completions. Nothing is yielded for an empty batch, so drivers
    never see one. `likely` rides along as the batch's hints (see `Batch`).
    """
    if not requests:
        return []
    merged: dict[tuple[Prefix, int], int] = {}
    for r in requests:
        merged[r.prefix, r.draw] = max(merged.get((r.prefix, r.draw), 0), r.k)
    batch = Batch(RolloutRequest(p, k, d) for (p, d), k in merged.items())
    batch.likely = tuple(r for r in likely if (r.prefix, r.draw) not in merged)
    replies = yield batch
    if len(replies) != len(batch) or any(len(rs) != r.k for r, rs in zip(batch, replies)):
        raise ValueError("the driver must send back exactly k rollouts per request, in request order")
    counters.requests += len(batch)
    counters.completions += sum(r.k for r in batch)
    counters.generated_tokens += sum(ro.num_tokens for rs in replies for ro in rs)
    by_prefix = dict(zip(merged, replies))
    return [by_prefix[r.prefix, r.draw][: r.k] for r in requests]


def drive(search: Search, policy: Policy) -> SearchResult:
    """Run one search to completion, serving each yielded batch with `policy` (tests, benchmarks)."""
    try:
        batch = next(search)
        while True:
            batch = search.send(policy(batch))
    except StopIteration as stop:
        return stop.value


Estimate = tuple[int, int]  # (k, number correct) of one MC estimate


def label_trace(
    method: str,
    steps: Prefix,
    final_answer: str | None,
    correct: bool,
    estimates: Sequence[Estimate | None],
    *,
    rule: str,
    first_error: int | None = None,
    root_mc: float | None = None,
) -> LabelledTrace:
    """Build a labelled trace from the estimates of its prefixes `steps[:i+1]`, i < len(steps) - 1.

    The last step's value is the trace's own verdict, recorded as k=1: rolling out from a complete
    solution only re-reads its answer, so both methods get it for free and compare fairly.
    """
    if len(estimates) != len(steps) - 1:
        raise ValueError("need one estimate (or None) per step except the last")
    per_step = [*estimates, (1, int(correct))]
    return LabelledTrace(
        steps,
        final_answer,
        correct,
        derive_labels(
            method,
            [None if e is None else e[1] / e[0] for e in per_step],
            [None if e is None else e[0] for e in per_step],
            [None if e is None else e[1] for e in per_step],
            rule=rule,
            first_error=first_error,
            root_mc=root_mc,
        ),
    )
