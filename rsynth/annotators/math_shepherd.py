"""Math-Shepherd: estimate every step of a solution with n independent completions (the baseline).

Costs n * (M - 1) completions for M steps, all of them independent, so a whole trace (or all sampled
solutions of a question) goes out in ONE batch. Each completion is a separate sample of one n-request
(not n answers inside one generation, as distilabel does), and a label is only ever read from the
verifier's verdict, so an empty continuation cannot flip a step.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsynth.annotators.base import (
    Counters,
    GivenTrace,
    RolloutRequest,
    Search,
    SearchResult,
    TreeNode,
    ask,
    label_trace,
)
from rsynth.annotators.labels import parse_rule
from rsynth.config import param

METHOD = "math_shepherd"


@dataclass(frozen=True)
class MathShepherdConfig:
    """Math-Shepherd's knobs, declared once (`param`: annotate-prm options and recipe keys)."""

    n: int = param(8, "--n", "math-shepherd: completions per step (the paper's N).")
    rule: str = param("he", "--rule", "math-shepherd hard label: he (any correct) | threshold=X on the soft value.")

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if parse_rule(self.rule)[0] == "first_error":
            raise ValueError("math-shepherd labels by MC value; first_error is OmegaPRM's rule")


def math_shepherd_search(config: MathShepherdConfig, given: GivenTrace | None = None, n_solutions: int = 1) -> Search:
    """Label `given`, or `n_solutions` solutions sampled from the question, step by step.

    HE_i (any of the n rollouts from steps[:i+1] correct) and SE_i (their fraction) both follow from
    the stored counts; the hard label uses `config.rule`. Sampled solutions with no steps cannot be
    labelled and are dropped. Every estimated prefix is also returned as a tree node (visits=1).
    """
    counters = Counters()
    if given is None:
        if n_solutions < 1:
            raise ValueError("n_solutions must be >= 1")
        (sampled,) = yield from ask([RolloutRequest((), n_solutions)], counters)
        solutions = [GivenTrace(r.steps, r.correct, r.final_answer) for r in sampled if r.steps]
    else:
        solutions = [given]
    requests = [RolloutRequest(s.steps[: i + 1], config.n) for s in solutions for i in range(len(s.steps) - 1)]
    replies = yield from ask(requests, counters)
    estimates = {q.prefix: (q.k, sum(r.correct for r in rs)) for q, rs in zip(requests, replies)}
    traces = [
        label_trace(
            METHOD,
            s.steps,
            s.final_answer,
            s.correct,
            [estimates[s.steps[: i + 1]] for i in range(len(s.steps) - 1)],
            rule=config.rule,
        )
        for s in solutions
    ]
    nodes = [TreeNode(p, c / k, k, c, 1, len(p)) for p, (k, c) in estimates.items()]
    return SearchResult("labelled", traces, nodes, counters)
