"""annotate-prm's parameters, declared once: the `rsynth annotate-prm` options and the recipe stage's
keys are generated from `AnnotateParams` (the search defaults come from the annotators' own configs),
`LeanParams` (--domain lean), `EngineParams` and `RunParams`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rsynth.annotators import MathShepherdConfig, OmegaPRMConfig
from rsynth.config import ANSWER_FALLBACK_HELP, answer_fallback, param, validate_choices
from rsynth.engines.base import SamplingParams
from rsynth.errors import UserError
from rsynth.pipelines.annotate import INPUT_KINDS, METHODS, AnnotateConfig
from rsynth.pipelines.domains import DOMAINS
from rsynth.steps import SPLIT_MODES
from rsynth.answers import DEFAULT_ANSWER_FALLBACK
from rsynth.verifiers.lean_params import LeanParams
from rsynth.verifiers.sandbox import CHOICES as SANDBOXES

_O, _M = OmegaPRMConfig(), MathShepherdConfig()


def _omega(name: str, flag: str):
    """An option for OmegaPRMConfig field `name`: its default and help are the config's own."""
    f = OmegaPRMConfig.__dataclass_fields__[name]
    return param(f.default, flag, f"omegaprm: {f.metadata['help']}.")


@dataclass
class AnnotateParams:
    method: str = param("omegaprm", "--method", "omegaprm | math-shepherd.", choices=METHODS)
    input_kind: str = param("auto", "--input-kind", "auto (traces when a steps column exists) | problems | traces.", choices=INPUT_KINDS)
    k0: int = param(_O.k0, "--k0", "omegaprm: pre-filter rollouts per question; all-right/all-wrong questions are not searched.")
    k: int = param(_O.k, "--k", "omegaprm: most rollouts per MC estimate (drawn in --chunks requests).")
    c_puct: float = param(_O.c_puct, "--c-puct", "omegaprm: exploration weight in U(s) = c_puct*sqrt(sum N)/(1+N(s)).")
    alpha: float = param(_O.alpha, "--alpha", "omegaprm: Q = alpha^(1-MC(s)) * beta^(len(r)/L).")
    beta: float = param(_O.beta, "--beta", "omegaprm: length penalty base in Q.")
    L: int = param(_O.L, "--L", "omegaprm: L in Q; len(r) is the rollout's generated tokens.")
    max_search: int = param(_O.max_search, "--max-search", "omegaprm: pool selections per question.")
    rollout_budget: int = param(_O.rollout_budget, "--rollout-budget", "omegaprm: completions per question (pre-filter included).")
    min_correct: int = _omega("min_correct", "--min-correct")
    search_given: bool = param(_O.search_given, "--search-given", "omegaprm on traces: also search the pool of wrong rollouts found.")
    pool_alive_only: bool = _omega("pool_alive_only", "--pool-alive-only/--pool-any")
    positive_traces: bool = _omega("positive_traces", "--positive-traces/--no-positive-traces")
    budget_fallback: bool = _omega("budget_fallback", "--budget-fallback/--budget-stop")
    chunks: int = _omega("chunks", "--chunks")
    dead_delta: float = _omega("dead_delta", "--dead-delta")
    dead_rate: float | None = _omega("dead_rate", "--dead-rate")
    given_k0: int = _omega("given_k0", "--given-k0")
    n: int = param(_M.n, "--n", "math-shepherd: completions per step (the paper's N).")
    rule: str = param(_M.rule, "--rule", "math-shepherd hard label: he (any correct) | threshold=X on the soft value.")
    n_solutions: int = param(1, "--n-solutions", "math-shepherd on problems: solutions sampled and labelled per question.")
    concurrent_searches: int = param(64, "--concurrent-searches", "--scheduler lockstep: questions per batch; their rollouts share engine calls.")
    scheduler: str = param("auto", "--scheduler", "async (every search advances as soon as its rollouts return; refilled continuously) | "
                           "lockstep (rounds over batches of questions) | auto (async on vllm/openai, lockstep on hf).",
                           choices=("auto", "async", "lockstep"))
    max_live_searches: int = param(256, "--max-live-searches", "--scheduler async: searches in progress at once; a finished one is "
                                   "replaced by the next input, and more (up to 4x) go live while the engine reports idle slots.")
    prefetch: bool = param(False, "--prefetch/--no-prefetch", "--scheduler async on vllm/openai, once every question is live: fill idle "
                           "engine slots with the requests searches will probably make next (the next bisection probes). Rows are "
                           "unchanged; unused ones cost completions (docs/annotators.md has the trade-off).")
    verify_workers: int = param(1, "--verify-workers", "Verifier processes (math: hard-timeout pool); verification overlaps "
                                "generation under --scheduler async.")
    split: str = param("auto", "--split", "Step splitting of rollouts: auto | step | blank | newline.", choices=SPLIT_MODES)
    domain: str = param("auto", "--domain", "math | code (steps are program lines, run against the tests) | lean (steps are tactics, "
                        "checked by Lean) | auto (the input's domain column, else math).", choices=("auto", *DOMAINS))
    verify_timeout: float = param(5.0, "--verify-timeout", "Seconds per answer check or program run; a timeout is that rollout's verdict.")
    sandbox: str = param("auto", "--sandbox", "Code sandbox (--domain code): auto (bwrap, else unshare; refuses when neither works) | bwrap | "
                         "unshare | unsafe-rlimit (no isolation).", choices=SANDBOXES)
    answer_fallback: str = param(DEFAULT_ANSWER_FALLBACK, "--answer-fallback", ANSWER_FALLBACK_HELP)

    def __post_init__(self) -> None:
        validate_choices(self)
        for flag, value in (("--concurrent-searches", self.concurrent_searches), ("--max-live-searches", self.max_live_searches),
                            ("--verify-workers", self.verify_workers)):
            if value < 1:
                raise UserError(f"{flag} must be >= 1")
        self.answer_fallback = answer_fallback(self.answer_fallback, "--answer-fallback: ")

    def config(self, sampling: SamplingParams, domain: str) -> AnnotateConfig:
        """The pipeline's config for `domain` (`auto` resolved by the caller from the input)."""
        try:
            return AnnotateConfig(
                method=self.method,
                omegaprm=OmegaPRMConfig(k0=self.k0, k=self.k, c_puct=self.c_puct, alpha=self.alpha, beta=self.beta, L=self.L,
                                        max_search=self.max_search, rollout_budget=self.rollout_budget, search_given=self.search_given,
                                        min_correct=self.min_correct, pool_alive_only=self.pool_alive_only,
                                        positive_traces=self.positive_traces, budget_fallback=self.budget_fallback, chunks=self.chunks,
                                        dead_delta=self.dead_delta, dead_rate=self.dead_rate, given_k0=self.given_k0),
                math_shepherd=MathShepherdConfig(n=self.n, rule=self.rule), n_solutions=self.n_solutions, params=sampling,
                split_mode=self.split, input_kind=self.input_kind, domain=domain, answer_fallback=self.answer_fallback,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def verifier(self, domain: str, lean: LeanParams) -> Any:
        """The rollout verifier of `domain` (None: run_annotate's math verifier)."""
        from rsynth.pipelines.domains import rollout_verifier

        return rollout_verifier(domain, verify_timeout=self.verify_timeout, lean=lean, sandbox=self.sandbox)
