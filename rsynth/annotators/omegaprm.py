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
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from rsynth.annotators.base import (
    Batch,
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
from rsynth.answers import NO_ANSWER
from rsynth.config import param

METHOD = "omegaprm"
TIE_EPS = 1e-12


@dataclass(frozen=True)
class OmegaPRMConfig:
    """Search knobs, declared once (`param`: the annotate-prm options and recipe keys are generated
    from these fields); selection constants follow openr's omegaPRM_v2 (Luo et al. 2024, arXiv:2406.06592).

    k, min_correct and chunks were chosen on bench/rollout_efficiency.py's grid of policy regimes
    (docs/annotators.md has the table); `paper()` gives the paper's rules at openr's settings.
    """

    k0: int = param(
        32, "--k0", "omegaprm: pre-filter rollouts per question; all-right/all-wrong questions are not searched."
    )
    k: int = param(16, "--k", "omegaprm: most rollouts per MC estimate (split into --chunks requests).")
    c_puct: float = param(0.125, "--c-puct", "omegaprm: exploration weight in U(s) = c_puct*sqrt(sum N)/(1+N(s)).")
    alpha: float = param(0.5, "--alpha", "omegaprm: Q = alpha^(1-MC(s)) * beta^(len(r)/L).")
    beta: float = param(0.9, "--beta", "omegaprm: length penalty base in Q.")
    L: int = param(500, "--L", "omegaprm: L in Q; len(r) is the rollout's generated tokens.")
    max_search: int = param(20, "--max-search", "omegaprm: pool selections per question.")
    rollout_budget: int = param(200, "--rollout-budget", "omegaprm: completions per question (pre-filter included).")
    search_given: bool = param(
        False, "--search-given", "omegaprm: on traces: also search the pool of wrong rollouts found."
    )
    min_correct: int = param(
        2, "--min-correct", "omegaprm: right rollouts for a prefix to count as still-right (1 = the paper's MC > 0)."
    )
    pool_alive_only: bool = param(
        True,
        "--pool-alive-only/--pool-any",
        "omegaprm: pool wrong rollouts only from states that pass --min-correct (off: any 0 < MC < 1).",
    )
    positive_traces: bool = param(
        True,
        "--positive-traces/--no-positive-traces",
        "omegaprm: emit each distinct right rollout from a still-right state as an all-positive trace.",
    )
    budget_fallback: bool = param(
        True,
        "--budget-fallback/--budget-stop",
        "omegaprm: when the best candidate's worst case exceeds the budget, bisect the best one that fits (off: stop).",
    )
    chunks: int = param(
        2,
        "--chunks",
        "omegaprm: sequential MC: requests an estimate is split into (k/chunks "
        "rollouts each), stopping once its decision is settled (1 = all k at once).",
    )
    dead_delta: float = param(
        0.05,
        "--dead-delta",
        "omegaprm: adaptive dead rule: chance that a prefix as good as "
        "--dead-rate is called dead (0 = the plain --min-correct rule).",
    )
    given_k0: int = param(
        32,
        "--given-k0",
        "omegaprm: on a wrong given trace: rollouts from the question first, to "
        "learn its pass rate for the dead rule (0 = none: the plain --min-correct rule).",
    )
    dead_rate: float | None = param(
        None,
        "--dead-rate",
        "omegaprm: adaptive dead rule: success rate of a still-right "
        "prefix (default: the question's pass rate from --k0 or --given-k0 rollouts).",
    )

    def __post_init__(self) -> None:
        if (
            min(self.k0, self.k, self.L, self.chunks) < 1
            or min(self.max_search, self.rollout_budget, self.given_k0) < 0
        ):
            raise ValueError("k0, k, L and chunks must be >= 1; max_search, rollout_budget and given_k0 >= 0")
        if not 1 <= self.min_correct <= self.k:
            raise ValueError("min_correct must be in [1, k]")
        if not (0 < self.alpha <= 1 and 0 < self.beta <= 1 and self.c_puct >= 0):
            raise ValueError("alpha and beta must be in (0, 1], c_puct >= 0")
        if not 0 <= self.dead_delta < 1 or (self.dead_rate is not None and not 0 < self.dead_rate <= 1):
            raise ValueError("dead_delta must be in [0, 1) and dead_rate in (0, 1]")

    @property
    def chunk(self) -> int:
        """Rollouts per request of a sequential estimate."""
        return math.ceil(self.k / self.chunks)

    @classmethod
    def paper(cls, **kw) -> OmegaPRMConfig:
        """The paper's search as rsynth ran it before the fixes: MC > 0, whole-k estimates, stop on budget."""
        legacy = dict(
            min_correct=1,
            pool_alive_only=False,
            positive_traces=False,
            budget_fallback=False,
            chunks=1,
            dead_delta=0.0,
            given_k0=0,
        )
        return cls(**{**legacy, **kw})


def q_value(config: OmegaPRMConfig, mc: float, num_tokens: int) -> float:
    return config.alpha ** (1 - mc) * config.beta ** (num_tokens / config.L)


def u_value(config: OmegaPRMConfig, total_visits: int, visits: int) -> float:
    return config.c_puct * math.sqrt(total_visits) / (1 + visits)


def probes_needed(span: int) -> int:
    """Worst-case estimates to bisect `span` candidate steps (what a selection may cost)."""
    return math.ceil(math.log2(span)) if span > 1 else 0


def binom_cdf(c: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= c)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(c + 1))


GIVEN_RATE_Z = 1.0  # given mode: one-sided ~84% lower bound of the pass rate (docs/annotators.md)


def wilson_lower(correct: int, n: int, z: float) -> float:
    """Wilson score lower bound of a success rate from `correct` of `n`."""
    p = correct / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n))


def sequential_plan(config: OmegaPRMConfig, rate: float | None) -> tuple[int, int]:
    """(n*, T) of an estimate: draw up to n* rollouts, alive as soon as T of them are right, else dead.

    The adaptive dead rule, a one-look test of "success rate >= `rate`" (a still-right prefix's rate,
    by default the question's pre-filter pass rate): n* is the first chunk multiple (<= k) at which
    even min_correct - 1 right rollouts would be that unlikely, P(Bin(n*, rate) <= min_correct-1) <=
    dead_delta, and T >= min_correct the lowest count still consistent with `rate` there. So:
    - a prefix with success rate >= `rate` is called dead with probability <= dead_delta (one look,
      no repeated-testing inflation; alive stops before n* only ever need T right rollouts);
    - the bar rises with the pass rate: where the policy usually succeeds, a few lucky recoveries
      after an error (q > 0) no longer make a dead prefix look alive.
    Without a usable rate (or dead_delta 0) the plan is the plain rule: up to k draws, T = min_correct.
    n* is a chunk multiple or k itself: one request of k when chunks is 1.
    """
    k, step = config.k, config.chunk
    if config.dead_delta and rate:
        for n in [*range(step, k, step), k]:
            if binom_cdf(config.min_correct - 1, n, rate) <= config.dead_delta:
                t = config.min_correct
                while binom_cdf(t, n, rate) <= config.dead_delta:
                    t += 1
                return n, t
    return k, config.min_correct


@dataclass(frozen=True)
class Candidate:
    """A rollout from a state node: its state and the continuation sampled from it."""

    state: Prefix
    rollout: Rollout

    @property
    def full(self) -> Prefix:
        return self.state + self.rollout.steps


@dataclass
class Tree:
    config: OmegaPRMConfig
    nodes: dict[Prefix, TreeNode] = field(default_factory=dict)
    alive: dict[Prefix, bool] = field(default_factory=dict)  # each node's decision: still right?
    pool: list[Candidate] = field(default_factory=list)
    seen: set[Prefix] = field(default_factory=set)  # full solutions pooled or searched: search each once
    right: list[Candidate] = field(default_factory=list)  # right rollouts of still-right states
    rate_z: float = 0.0  # z of the pass rate's lower bound used by the dead rule (see `rate`)

    def add(self, prefix: Prefix, rollouts: list[Rollout], alive: bool | None = None) -> TreeNode:
        """Record an estimate and its decision; pool its wrong rollouts if the state qualifies.

        A state qualifies when it is not surely right (MC < 1) and, with `pool_alive_only`, passes the
        decision rule (the root always does once any rollout is right: it holds no step to be wrong);
        without it, any 0 < MC < 1 (the paper). Bisecting a rollout of a dead state would start from
        a false "still right" assumption. Not pooled: empty continuations (no step to search) and
        rollouts without an answer (a truncated rollout has no first error to find).
        """
        correct = sum(r.correct for r in rollouts)
        node = TreeNode(prefix, correct / len(rollouts), len(rollouts), correct, 1, len(prefix))
        self.nodes[prefix] = node
        self.alive[prefix] = node.alive = correct >= self.config.min_correct if alive is None else alive
        passes = self.alive[prefix] or (not prefix and correct > 0)
        if node.mc < 1 and (passes if self.config.pool_alive_only else node.mc > 0):
            for r in rollouts:
                cand = Candidate(prefix, r)
                if not r.correct and r.steps and r.status != NO_ANSWER and cand.full not in self.seen:
                    self.seen.add(cand.full)
                    self.pool.append(cand)
        if passes:
            self.right += [Candidate(prefix, r) for r in rollouts if r.correct and r.steps]
        return node

    def score(self, cand: Candidate) -> float:
        total = sum(n.visits for n in self.nodes.values())
        node = self.nodes[cand.state]
        return q_value(self.config, node.mc, cand.rollout.num_tokens) + u_value(self.config, total, node.visits)

    def best(self, rng: random.Random, pool: list[Candidate] | None = None) -> Candidate:
        """argmax Q + U over `pool` (default: the whole pool); exact ties (to float noise) are broken
        by the seeded RNG, in pool order."""
        pool = self.pool if pool is None else pool
        scores = [self.score(c) for c in pool]
        top = max(scores)
        return rng.choice([c for c, s in zip(pool, scores) if s >= top - TIE_EPS])

    def rate(self) -> float | None:
        """The success rate a still-right prefix is assumed to have (the dead rule's reference):
        `dead_rate`, else the question's pass rate -- in given mode its Wilson lower bound at one
        sigma (`rate_z`), measured on the bench grid: from given_k0 rollouts an over-estimate calls
        still-right prefixes dead too often, while in root mode the point estimate did better."""
        root = self.nodes.get(())
        if self.config.dead_rate is not None or root is None:
            return self.config.dead_rate
        return wilson_lower(root.correct, root.k, self.rate_z)

    def estimate(
        self, prefix: Prefix, counters: Counters, then: Sequence[Prefix] = ()
    ) -> Generator[Batch, Replies, TreeNode]:
        """MC(prefix) and its decision, or the known node without any request.

        Requests of `chunk` = k/chunks rollouts (draw 0, 1, ...) until T are right (alive,
        the same decision more draws would reach) or n* are drawn (dead); see `sequential_plan`.
        The node records the k actually drawn, so its MC value and soft label stay honest counts.
        Each request carries as hints this estimate's next draw and the first request of each prefix
        in `then` (what the caller may estimate next).
        """
        if prefix in self.nodes:
            return self.nodes[prefix]
        step = self.config.chunk
        n_max, need = sequential_plan(self.config, self.rate())
        rollouts: list[Rollout] = []
        following = [self.first_request(p) for p in then if p not in self.nodes]
        while len(rollouts) < n_max and sum(r.correct for r in rollouts) < need:
            draw = len(rollouts) // step
            k = min(step, n_max - len(rollouts))
            more = n_max - len(rollouts) - k
            likely = [RolloutRequest(prefix, min(step, more), draw + 1)] if more > 0 else []
            (got,) = yield from ask([RolloutRequest(prefix, k, draw)], counters, likely + following)
            rollouts += got
        return self.add(prefix, rollouts, sum(r.correct for r in rollouts) >= need)

    def first_request(self, prefix: Prefix) -> RolloutRequest:
        """The request an estimate of `prefix` would start with (a hint: see `Batch`)."""
        return RolloutRequest(prefix, min(self.config.chunk, sequential_plan(self.config, self.rate())[0]), 0)

    def first_error(self, steps: Prefix, left: int, counters: Counters) -> Generator[Batch, Replies, int]:
        """0-based index of the first wrong step of the wrong solution `steps`.

        Invariant: steps[:left] is still right and steps[:right] is not, the full wrong solution
        counting as not without an estimate; the error is step right - 1 once the interval closes.
        "Still right" is the estimate's decision: at least min_correct right rollouts. Each probe
        hints at both probes that may follow it (alive: the right half's middle; dead: the left's).
        """
        right = len(steps)
        while right - left > 1:
            mid = (left + right) // 2
            after = [steps[:m] for lo, hi in ((mid, right), (left, mid)) if hi - lo > 1 for m in [(lo + hi) // 2]]
            yield from self.estimate(steps[:mid], counters, after)
            left, right = (mid, right) if self.alive[steps[:mid]] else (left, mid)
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

    def positives(self, exclude: set[Prefix]) -> list[LabelledTrace]:
        """Every distinct right rollout of a still-right state as an all-positive trace, labelled with
        the MC values the tree holds along its path (a PRM must also see whole right solutions).

        A right rollout whose path crosses a prefix the search estimated dead is a lucky recovery:
        it is not emitted (docs/annotators.md, "One label per prefix"), since its own verdict and the
        estimate on its path disagree and the dead prefix is already labelled by the search."""
        out, seen = [], set(exclude)
        for cand in self.right:
            if cand.full not in seen and not self.crosses_dead(cand.full):
                seen.add(cand.full)
                out.append(self.label(cand.full, cand.rollout.final_answer, True, -1))
        return out

    def crosses_dead(self, steps: Prefix) -> bool:
        """Whether a step prefix of `steps` (the whole included) was estimated dead."""
        return any(self.alive.get(steps[: i + 1]) is False for i in range(len(steps)))

    def pick(self, rng: random.Random, spent: int) -> Candidate | None:
        """The next pool rollout to bisect, or None when the budget cannot finish any.

        The best candidate's worst case (probes x k) must fit in what is left; if it does not, the
        best candidate that fits is taken instead (`budget_fallback`; off: the search stops).
        """

        def fits(c: Candidate) -> bool:
            return spent + probes_needed(len(c.rollout.steps)) * self.config.k <= self.config.rollout_budget

        cand = self.best(rng)
        if fits(cand):
            return cand
        fitting = [c for c in self.pool if fits(c)] if self.config.budget_fallback else []
        return self.best(rng, fitting) if fitting else None

    def search_pool(
        self, rng: random.Random, counters: Counters, traces: list[LabelledTrace]
    ) -> Generator[Batch, Replies, str]:
        """Select and bisect pool rollouts until a limit is hit; return which one stopped it.

        A selection starts only if its worst case fits in the remaining budget, so the budget is
        never exceeded and no bisection is left half-done.
        """
        for _ in range(self.config.max_search):
            if not self.pool:
                return "pool_empty"
            cand = self.pick(rng, counters.completions)
            if cand is None:
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
    `config.search_given`, the pool its estimates filled is searched too. After a pool search, the
    right rollouts of still-right states follow as all-positive traces (`positive_traces`).
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
        if not given.correct and config.given_k0 and config.dead_delta and config.dead_rate is None:
            (rollouts,) = yield from ask([RolloutRequest((), config.given_k0)], counters)
            tree.add((), rollouts)  # the question's pass rate: the dead rule's reference
            tree.rate_z = GIVEN_RATE_Z
        e = -1 if given.correct else (yield from tree.first_error(given.steps, 0, counters))
        traces.append(tree.label(given.steps, given.final_answer, given.correct, e))
        if config.search_given:
            stop = yield from tree.search_pool(rng, counters, traces)
    if config.positive_traces and stop is not None:
        traces += tree.positives({t.steps for t in traces})
    return SearchResult(outcome, consistent(tree, traces), list(tree.nodes.values()), counters, stop)


def consistent(tree: Tree, traces: list[LabelledTrace]) -> list[LabelledTrace]:
    """Relabel `traces` so that every step prefix has ONE hard label in the search's output.

    Evidence per prefix: a trace's own verdict for the whole trace, else the tree's decision where
    the prefix was estimated. A prefix is bad when it or an ancestor is dead (dead wins: a step on a
    prefix estimated dead is never correct, nor any step after it), good when some prefix extending it
    is alive, and the first error is the first bad step. Binary search infers exactly this from its
    probes, so the label depends on the prefix alone, never on which trace carries it: two traces
    sharing a prefix cannot disagree, even when noisy estimates are not monotone along a path.
    """
    alive: dict[Prefix, bool] = {p: a for p, a in tree.alive.items() if p}
    alive.update({t.steps: t.correct for t in traces})
    dead = {p for p, a in alive.items() if not a}
    supported = {p[:i] for p, a in alive.items() if a for i in range(1, len(p) + 1)}
    out = []
    for t in traces:
        e = next((i for i in range(len(t.steps)) if t.steps[: i + 1] in dead or t.steps[: i + 1] not in supported), -1)
        out.append(t if e == t.first_error else tree.label(t.steps, t.final_answer, t.correct, e))
    return out
