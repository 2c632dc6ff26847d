"""annotate-prm's parameters, declared once: the `rsynth annotate-prm` options and the recipe stage's
keys are generated from `AnnotateParams`, the searches' own configs (`OmegaPRMConfig`,
`MathShepherdConfig`: used as option groups as they are), `LeanParams` (--domain lean),
`EngineParams` and `RunParams`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rsynth.annotators import MathShepherdConfig, OmegaPRMConfig
from rsynth.answers import DEFAULT_ANSWER_FALLBACK
from rsynth.config import ANSWER_FALLBACK_HELP, answer_fallback, param, validate_choices
from rsynth.engines.base import SamplingParams
from rsynth.errors import UserError
from rsynth.stages.annotate.async_scheduler import SCHEDULERS
from rsynth.stages.annotate.stage import INPUT_KINDS, METHODS, AnnotateConfig
from rsynth.stages.domains import DOMAINS
from rsynth.steps import SPLIT_MODES
from rsynth.verifiers.code.sandbox import sandbox_param
from rsynth.verifiers.lean_params import LeanParams

SEARCH_CONFIGS = {"omegaprm": OmegaPRMConfig, "math_shepherd": MathShepherdConfig}  # option groups of annotate-prm


@dataclass
class AnnotateParams:
    method: str = param("omegaprm", "--method", "omegaprm | math-shepherd.", choices=METHODS)
    input_kind: str = param(
        "auto", "--input-kind", "auto (traces when a steps column exists) | problems | traces.", choices=INPUT_KINDS
    )
    n_solutions: int = param(
        1, "--n-solutions", "math-shepherd on problems: solutions sampled and labelled per question."
    )
    concurrent_searches: int = param(
        64, "--concurrent-searches", "--scheduler lockstep: questions per batch; their rollouts share engine calls."
    )
    scheduler: str = param(
        "auto",
        "--scheduler",
        "async (every search advances as soon as its rollouts return; refilled "
        "continuously) | lockstep (rounds over batches of questions) | auto (async on vllm/openai, lockstep on hf).",
        choices=SCHEDULERS,
    )
    max_live_searches: int = param(
        256,
        "--max-live-searches",
        "--scheduler async: searches in progress at once; a finished one is "
        "replaced by the next input, and more (up to 4x) go live while the engine reports idle slots.",
    )
    prefetch: bool = param(
        False,
        "--prefetch/--no-prefetch",
        "--scheduler async on vllm/openai, once every question is live: fill idle "
        "engine slots with the requests searches will probably make next (the next bisection probes). Rows are "
        "unchanged; unused ones cost completions (docs/annotators.md has the trade-off).",
    )
    verify_workers: int = param(
        1,
        "--verify-workers",
        "Verifier processes (math: hard-timeout pool; code: sandboxed runs in "
        "flight); verification overlaps generation under --scheduler async.",
    )
    split: str = param(
        "auto", "--split", "Step splitting of rollouts: auto | step | blank | newline.", choices=SPLIT_MODES
    )
    domain: str = param(
        "auto",
        "--domain",
        "math | code (steps are program lines, run against the tests) | lean (steps are tactics, "
        "checked by Lean) | auto (the input's domain column, else math).",
        choices=("auto", *DOMAINS),
    )
    verify_timeout: float = param(
        5.0, "--verify-timeout", "Seconds per answer check or program run; a timeout is that rollout's verdict."
    )
    sandbox: str = sandbox_param()
    answer_fallback: str = param(DEFAULT_ANSWER_FALLBACK, "--answer-fallback", ANSWER_FALLBACK_HELP)

    def __post_init__(self) -> None:
        validate_choices(self)
        for flag, value in (
            ("--concurrent-searches", self.concurrent_searches),
            ("--max-live-searches", self.max_live_searches),
            ("--verify-workers", self.verify_workers),
        ):
            if value < 1:
                raise UserError(f"{flag} must be >= 1")
        self.answer_fallback = answer_fallback(self.answer_fallback, "--answer-fallback: ")

    def config(
        self,
        sampling: SamplingParams,
        domain: str,
        omegaprm: OmegaPRMConfig | None = None,
        math_shepherd: MathShepherdConfig | None = None,
    ) -> AnnotateConfig:
        """The pipeline's config for `domain` (`auto` resolved by the caller from the input)."""
        return AnnotateConfig(
            method=self.method,
            omegaprm=omegaprm or OmegaPRMConfig(),
            math_shepherd=math_shepherd or MathShepherdConfig(),
            n_solutions=self.n_solutions,
            params=sampling,
            split_mode=self.split,
            input_kind=self.input_kind,
            domain=domain,
            answer_fallback=self.answer_fallback,
        )

    def verifier(self, domain: str, lean: LeanParams) -> Any:
        """The rollout verifier of `domain` (None: run_annotate's math verifier with --verify-workers processes)."""
        from rsynth.stages.domains import rollout_verifier

        return rollout_verifier(
            domain, verify_timeout=self.verify_timeout, lean=lean, workers=self.verify_workers, sandbox=self.sandbox
        )
