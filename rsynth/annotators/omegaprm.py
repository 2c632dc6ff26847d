"""OmegaPRM: locate first errors by binary search and spend the rest of the budget where it pays.

A wrong solution has a first error e: every prefix ending before it can still reach the right answer
(MC > 0), every prefix including it cannot (MC = 0). Bisecting on MC > 0 finds e with
ceil(log2 M) estimates instead of Math-Shepherd's M - 1.

Every estimated prefix becomes a tree node (never estimated twice). Wrong rollouts from nodes with
0 < MC < 1 form a candidate pool; the search repeatedly binary-searches the pool rollout maximising

    Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L)      U(s) = c_puct * sqrt(sum_s' N(s')) / (1 + N(s))

- len(r) is the rollout's generated token count (its continuation only; the state prefix is shared
  by every rollout from s, so it would not discriminate between them). Q prefers short wrong
  rollouts from states that were probably right -- the most informative errors.
- N(s) counts visits: 1 when s is estimated, +1 each time a pool rollout from s is selected. Counting
  the estimate makes sum N > 0 from the first selection, so U already spreads selections then.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from dataclasses import dataclass, field

from rsynth.annotators.base import (
    Counters,
    GivenTrace,
    LabelledTrace,
    Prefix,
    Replies,
    Rollout,
    RolloutRequest,
    Search,
    SearchResult,
    TreeNode,
    ask,
    label_trace,
)

METHOD = "omegaprm"
TIE_EPS = 1e-12


@dataclass(frozen=True)
class OmegaPRMConfig:
    """Defaults follow the public reimplementation (openr omegaPRM_v2), see REFERENCE section 1."""

    k0: int = 32  # pre-filter rollouts from the question
    k: int = 16  # rollouts per MC estimate
    c_puct: float = 0.125
    alpha: float = 0.5
    beta: float = 0.9
    L: int = 500  # token length scale of the Q length penalty
    max_search: int = 20  # pool selections
    rollout_budget: int = 200  # completions, pre-filter included
    search_given: bool = False  # after labelling a given trace, also search the pool its estimates fill
    # Bisection treats a prefix as still-right when >= min_correct of its k rollouts are. 1 is the
    # paper's MC > 0; 2 resists policies that sometimes guess right after an error (see the bench).
    min_correct: int = 1

    def __post_init__(self) -> None:
        if min(self.k0, self.k, self.L) < 1 or min(self.max_search, self.rollout_budget) < 0:
            raise ValueError("k0, k and L must be >= 1; max_search and rollout_budget >= 0")
        if not 1 <= self.min_correct <= self.k:
            raise ValueError("min_correct must be in [1, k]")
        if not (0 < self.alpha <= 1 and 0 < self.beta <= 1 and self.c_puct >= 0):
            raise ValueError("alpha and beta must be in (0, 1], c_puct >= 0")


def q_value(config: OmegaPRMConfig, mc: float, num_tokens: int) -> float:
    return config.alpha ** (1 - mc) * config.beta ** (num_tokens / config.L)


def u_value(config: OmegaPRMConfig, total_visits: int, visits: int) -> float:
    return config.c_puct * math.sqrt(total_visits) / (1 + visits)


def probes_needed(span: int) -> int:
    """Worst-case estimates to bisect `span` candidate steps (what a selection may cost)."""
    return math.ceil(math.log2(span)) if span > 1 else 0


@dataclass(frozen=True)
class Candidate:
    """A wrong rollout in the pool: its state node and the continuation sampled from it."""

    state: Prefix
    rollout: Rollout

    @property
    def full(self) -> Prefix:
        return self.state + self.rollout.steps


@dataclass
class Tree:
    config: OmegaPRMConfig
    nodes: dict[Prefix, TreeNode] = field(default_factory=dict)
    pool: list[Candidate] = field(default_factory=list)
    seen: set[Prefix] = field(default_factory=set)  # full solutions pooled or searched: search each once

    def add(self, prefix: Prefix, rollouts: list[Rollout]) -> TreeNode:
        """Record an estimate; pool its wrong rollouts if the state is neither surely right nor wrong.

        Empty continuations are not pooled: there is no step in them to search.
        """
        correct = sum(r.correct for r in rollouts)
        node = TreeNode(prefix, correct / len(rollouts), len(rollouts), correct, 1, len(prefix))
        self.nodes[prefix] = node
        if 0 < node.mc < 1:
            for r in rollouts:
                cand = Candidate(prefix, r)
                if not r.correct and r.steps and cand.full not in self.seen:
                    self.seen.add(cand.full)
                    self.pool.append(cand)
        return node

    def score(self, cand: Candidate) -> float:
        total = sum(n.visits for n in self.nodes.values())
        node = self.nodes[cand.state]
        return q_value(self.config, node.mc, cand.rollout.num_tokens) + u_value(self.config, total, node.visits)

    def best(self, rng: random.Random) -> Candidate:
        """argmax Q + U; exact ties (to float noise) are broken by the seeded RNG, in pool order."""
        scores = [self.score(c) for c in self.pool]
        top = max(scores)
        return rng.choice([c for c, s in zip(self.pool, scores) if s >= top - TIE_EPS])

    def estimate(self, prefix: Prefix, counters: Counters) -> Generator[list[RolloutRequest], Replies, TreeNode]:
        """MC(prefix) with one k-request, or the known node without any."""
        if prefix in self.nodes:
            return self.nodes[prefix]
        (rollouts,) = yield from ask([RolloutRequest(prefix, self.config.k)], counters)
        return self.add(prefix, rollouts)

    def first_error(self, steps: Prefix, left: int, counters: Counters) -> Generator[list[RolloutRequest], Replies, int]:
        """0-based index of the first wrong step of the wrong solution `steps`.

        Invariant: MC(steps[:left]) > 0 and MC(steps[:right]) = 0, the full wrong solution counting
        as 0 without an estimate; the error is step right - 1 once the interval closes. "> 0" means
        at least min_correct of k rollouts right (a known node from another k is compared by MC).
        """
        right = len(steps)
        while right - left > 1:
            mid = (left + right) // 2
            node = yield from self.estimate(steps[:mid], counters)
            left, right = (mid, right) if node.mc >= self.config.min_correct / self.config.k else (left, mid)
        return right - 1

    def label(self, steps: Prefix, final_answer: str | None, correct: bool, first_error: int) -> LabelledTrace:
        known = [self.nodes.get(steps[: i + 1]) for i in range(len(steps) - 1)]
        root = self.nodes.get(())
        return label_trace(
            METHOD,
            steps,
            final_answer,
            correct,
            [None if n is None else (n.k, n.correct) for n in known],
            rule="first_error",
            first_error=first_error,
            root_mc=None if root is None else root.mc,
        )

    def search_pool(
        self, rng: random.Random, counters: Counters, traces: list[LabelledTrace]
    ) -> Generator[list[RolloutRequest], Replies, str]:
        """Select and bisect pool rollouts until a limit is hit; return which one stopped it.

        A selection starts only if its worst case fits in the remaining budget, so the budget is
        never exceeded and no bisection is left half-done.
        """
        for _ in range(self.config.max_search):
            if not self.pool:
                return "pool_empty"
            cand = self.best(rng)
            if counters.completions + probes_needed(len(cand.rollout.steps)) * self.config.k > self.config.rollout_budget:
                return "budget"
            self.pool.remove(cand)
            self.nodes[cand.state].visits += 1
            e = yield from self.first_error(cand.full, len(cand.state), counters)
            traces.append(self.label(cand.full, cand.rollout.final_answer, False, e))
        return "max_search"


def omegaprm_search(config: OmegaPRMConfig, seed: int, given: GivenTrace | None = None) -> Search:
    """Search a question from its root, or label `given` (see docs/annotators.md).

    Root mode: k0 pre-filter rollouts; a question the policy always or never solves is returned as
    all_correct / all_wrong without search; otherwise the pool of wrong pre-filter rollouts is
    searched. Given mode: a correct trace is all-positive with no rollouts; a wrong one is bisected
    from the question (its MC > 0 assumed, as no pre-filter ran) and, only with
    `config.search_given`, the pool its estimates filled is searched too.
    """
    rng = random.Random(seed)
    counters = Counters()
    tree = Tree(config)
    traces: list[LabelledTrace] = []
    stop: str | None = None
    if given is None:
        (rollouts,) = yield from ask([RolloutRequest((), config.k0)], counters)
        root = tree.add((), rollouts)
        if root.mc in (0.0, 1.0):
            return SearchResult("all_correct" if root.mc else "all_wrong", [], list(tree.nodes.values()), counters)
        outcome = "searched"
        stop = yield from tree.search_pool(rng, counters, traces)
    else:
        outcome = "labelled"
        tree.seen.add(given.steps)
        e = -1 if given.correct else (yield from tree.first_error(given.steps, 0, counters))
        traces.append(tree.label(given.steps, given.final_answer, given.correct, e))
        if config.search_given:
            stop = yield from tree.search_pool(rng, counters, traces)
    return SearchResult(outcome, traces, list(tree.nodes.values()), counters, stop)
