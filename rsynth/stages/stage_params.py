"""The parameters of `generate problems|solutions|code|formal|proofs`, declared once: their CLI options and
their recipe stages' keys (`problems`, `solutions`, `code`, `formal`, `proofs`) are generated from these fields."""

from __future__ import annotations

from dataclasses import dataclass

from rsynth.answers import DEFAULT_ANSWER_FALLBACK
from rsynth.config import ANSWER_FALLBACK_HELP, answer_fallback, param, parse_range, validate_choices
from rsynth.engines.base import SamplingParams
from rsynth.errors import UserError
from rsynth.stages.codegen import STYLES, CodeConfig
from rsynth.stages.formal import FormalConfig, ProofsConfig
from rsynth.stages.problem import DEFAULT_INSTRUCTION
from rsynth.stages.problems import TEMPLATE_CHOICES, EvolveConfig
from rsynth.stages.solutions import SolutionsConfig
from rsynth.steps import SPLIT_MODES
from rsynth.synth.knobs import Knobs
from rsynth.verifiers.code.sandbox import sandbox_param


@dataclass
class ProblemsParams:
    """`generate problems` from templates (the `problems` recipe stage); its seed is the engine's --seed."""

    template: str = param(
        "mixed",
        "--template",
        "arithmetic | linear | fractions | percent | mixed.",
        aliases=("-t",),
        choices=TEMPLATE_CHOICES,
    )
    n: int = param(
        100,
        "--n",
        "Number of problems; with --from, rewrites in total (spread evenly over the seeds, first seeds first).",
    )
    max_steps: int = param(3, "--max-steps", "Difficulty: operations chained per problem.")
    max_number: int = param(20, "--max-number", "Difficulty: size of the numbers.")

    def __post_init__(self) -> None:
        validate_choices(self)
        if self.n < 0 or self.max_steps < 1 or self.max_number < 2:
            raise UserError("--n must be >= 0, --max-steps >= 1 and --max-number >= 2")

    def knobs(self) -> Knobs:
        return Knobs(self.max_steps, self.max_number)


_CLI_ONLY = (
    "CLI only: the problems recipe stage writes template problems; rewrite seeds with `rsynth generate problems --from`"
)


@dataclass
class EvolveParams:
    """`generate problems --from SEEDS`: LLM rewrites of seed problems, kept when sampled solutions agree."""

    from_seeds: str | None = param(
        None, "--from", "Seed problems to rewrite with --model instead of templates.", recipe=_CLI_ONLY
    )
    n_check: int = param(
        4, "--n-check", "--from: solutions sampled to check a rewritten problem's answer.", recipe=_CLI_ONLY
    )
    agreement: float = param(
        0.75, "--agreement", "--from: share of solutions that must agree on the answer.", recipe=_CLI_ONLY
    )

    def __post_init__(self) -> None:
        if self.n_check < 1 or not 0.0 < self.agreement <= 1.0:
            raise UserError("--n-check must be >= 1 and --agreement in (0, 1]")

    def config(self, sampling: SamplingParams) -> EvolveConfig:
        return EvolveConfig(params=sampling, n_check=self.n_check, agreement=self.agreement)


@dataclass
class SolutionsParams:
    n_samples: int = param(4, "--n-samples", "Solutions sampled per problem.", aliases=("-n",))
    split: str = param(
        "auto",
        "--split",
        "Step splitting: auto | step ('Step k:') | blank (blank lines) | newline.",
        choices=SPLIT_MODES,
    )
    keep_pass_rate: str | None = param(
        None,
        "--keep-pass-rate",
        "LO:HI: keep problems whose pass rate is in range; others go to filtered/.",
        kind="range",
    )
    instruction: str | None = param(None, "--instruction", "Prompt template with {problem}.")
    verify_timeout: float = param(5.0, "--verify-timeout", "Seconds per answer check.")
    answer_fallback: str = param(DEFAULT_ANSWER_FALLBACK, "--answer-fallback", ANSWER_FALLBACK_HELP)

    def __post_init__(self) -> None:
        validate_choices(self)
        if self.n_samples < 1:
            raise UserError("--n-samples must be >= 1")
        self.answer_fallback = answer_fallback(self.answer_fallback, "--answer-fallback: ")
        if "{problem}" not in (self.instruction or DEFAULT_INSTRUCTION):
            raise UserError("--instruction must contain {problem}")
        self.pass_rate_range = parse_range(self.keep_pass_rate, "--keep-pass-rate") if self.keep_pass_rate else None

    def config(self, sampling: SamplingParams) -> SolutionsConfig:
        return SolutionsConfig(
            n_samples=self.n_samples,
            params=sampling,
            instruction=self.instruction or DEFAULT_INSTRUCTION,
            split_mode=self.split,
            pass_rate_range=self.pass_rate_range,
            answer_fallback=self.answer_fallback,
        )


@dataclass
class CodeParams:
    n_samples: int = param(4, "--n-samples", "Programs sampled per task.", aliases=("-n",))
    style: str = param(
        "assert",
        "--style",
        "Test style of raw test columns: assert | io | stdio | evalplus (MBPP+ rows use their plus "
        "inputs by themselves).",
        choices=STYLES,
    )
    synthesize_tests: bool = param(
        False,
        "--synthesize-tests",
        "Tasks without tests: the model writes asserts; those the reference solution passes are kept.",
    )
    mutation_labels: int = param(
        0, "--mutation-labels", "Line labels: run up to M single-line mutants of each passing program (OUT/mutants)."
    )
    verify_timeout: float = param(10.0, "--verify-timeout", "Seconds per program run in the sandbox.")
    workers: int = param(2, "--workers", "Sandbox runs in parallel.")
    sandbox: str = sandbox_param()

    def __post_init__(self) -> None:
        validate_choices(self)
        if self.n_samples < 1 or self.mutation_labels < 0 or self.workers < 1:
            raise UserError("--n-samples and --workers must be >= 1, --mutation-labels >= 0")

    def config(self, sampling: SamplingParams) -> CodeConfig:
        return CodeConfig(
            self.n_samples,
            sampling,
            style=self.style,
            synthesize_tests=self.synthesize_tests,
            mutation_labels=self.mutation_labels,
        )

    def verifier(self):
        from rsynth.stages.domains import code_verifier

        return code_verifier(self.verify_timeout, self.workers, self.sandbox)


@dataclass
class FormalParams:
    n_samples: int = param(1, "--n-samples", "Candidate statements sampled per problem.", aliases=("-n",))
    min_quality: float | None = param(
        None, "--min-quality", "Have the model grade faithfulness 1-5 and keep statements graded >= this."
    )
    trivial_heartbeats: int = param(
        20000, "--trivial-heartbeats", "Heartbeat limit for the vacuity and trivial-tactic checks."
    )

    def __post_init__(self) -> None:
        if self.n_samples < 1 or self.trivial_heartbeats < 1:
            raise UserError("--n-samples and --trivial-heartbeats must be >= 1")
        if self.min_quality is not None and not 1 <= self.min_quality <= 5:
            raise UserError("--min-quality must be between 1 and 5")

    def config(self, sampling: SamplingParams, header: str) -> FormalConfig:
        return FormalConfig(
            self.n_samples,
            sampling,
            header=header,
            trivial_heartbeats=self.trivial_heartbeats,
            min_quality=self.min_quality,
        )


@dataclass
class ProofsParams:
    n_samples: int = param(4, "--n-samples", "Whole proofs sampled per statement (and per negation).", aliases=("-n",))
    negation: bool = param(
        True, "--negation/--no-negation", "Also try to prove each statement's negation; a proof rejects the statement."
    )
    batch_size: int = param(64, "--batch-size", "Statements per Lean run (one run checks all their proofs).")

    def __post_init__(self) -> None:
        if self.n_samples < 1 or self.batch_size < 1:
            raise UserError("--n-samples and --batch-size must be >= 1")

    def config(self, sampling: SamplingParams, header: str) -> ProofsConfig:
        return ProofsConfig(self.n_samples, sampling, header=header, negation=self.negation)
