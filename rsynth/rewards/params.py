"""How rsynth scores an RL rollout: the options of every reward entry point, declared once.

`rsynth serve-reward` takes them as CLI options; verl passes them as `reward_kwargs`
(`custom_reward_function.reward_kwargs.workers=2`), TRL and OpenRLHF users as keyword arguments
of `make_reward_func` / `RewardScorer`. Defaults give the plain RLVR reward: 1 for a verified
answer, 0 otherwise, no shaping terms.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from rsynth.answers import ANSWER_RULES, EXPLICIT_RULES, parse_answer_fallback
from rsynth.config import param, validate_choices
from rsynth.errors import UserError

SANDBOXES = ("auto", "bwrap", "unshare", "unsafe-rlimit")
EXPLICIT_CHAIN = ",".join(r for r in ANSWER_RULES if r in EXPLICIT_RULES)  # answers the text marks; no guess


@dataclass(frozen=True)
class RewardParams:
    workers: int = param(
        2,
        "--workers",
        "Verifier worker processes (math pool, concurrent sandboxes); a batch of "
        "1,024 rollouts runs on these, never on 1,024 new processes.",
    )
    math_timeout: float = param(
        5.0, "--math-timeout", "Hard seconds per math answer (its worker is killed past it: reward 0)."
    )
    code_timeout: float = param(
        10.0, "--code-timeout", "Hard seconds per program run in the sandbox (reward 0 past it)."
    )
    sandbox: str = param(
        "auto", "--sandbox", "Code sandbox: auto | bwrap | unshare | unsafe-rlimit (no isolation).", choices=SANDBOXES
    )
    answer_rules: str = param(
        EXPLICIT_CHAIN,
        "--answer-rules",
        "Math answer extraction: comma-separated rules of rsynth's extraction (as --answer-fallback). "
        "The default rewards only an answer the text marks; add last-number to accept a guessed "
        "trailing number.",
    )
    format_weight: float = param(
        0.0,
        "--format-weight",
        "Added to the reward when the answer is marked in the expected form (math: \\boxed{} or "
        "'the answer is'; code: a fenced block; lean: a lean block), right or wrong. 0: off.",
    )
    length_limit: int = param(0, "--length-limit", "Characters past which --length-penalty applies. 0: off.")
    length_penalty: float = param(
        0.0,
        "--length-penalty",
        "Subtracted, scaled by how far past --length-limit a completion runs (full at twice the limit). 0: off.",
    )
    cache_size: int = param(65536, "--cache-size", "Verdicts remembered by (ground truth, answer); 0: no cache.")

    def __post_init__(self) -> None:
        validate_choices(self)
        if self.workers < 1:
            raise UserError("--workers must be >= 1")
        if self.math_timeout <= 0 or self.code_timeout <= 0:
            raise UserError("--math-timeout and --code-timeout must be > 0")
        if self.length_limit < 0 or self.length_penalty < 0 or self.format_weight < 0 or self.cache_size < 0:
            raise UserError("--length-limit, --length-penalty, --format-weight and --cache-size must be >= 0")
        try:
            parse_answer_fallback(self.answer_rules)
        except ValueError:
            raise UserError(
                f"--answer-rules {self.answer_rules!r}: expected a comma-separated order of "
                f"{', '.join(ANSWER_RULES)} (each once)"
            ) from None

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> RewardParams:
        """The params named in `options` (a trainer's reward kwargs); other keys are ignored, since
        trainers pass their own extras (verl's `reward_router_address`, TRL's `trainer_state`)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names})
