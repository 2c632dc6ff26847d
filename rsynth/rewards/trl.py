"""TRL's GRPOTrainer reward function: `GRPOTrainer(reward_funcs=rsynth.rewards.trl.reward_func, ...)`.

TRL 1.13.0 (`GRPOTrainer._calculate_rewards`) calls `reward_func(prompts=..., completions=...,
completion_ids=..., **columns)`, where every dataset column besides `prompt` arrives as a list
with one value per completion, plus `trainer_state`, `log_extra` and `log_metric`. Completions
are strings, or lists of chat messages for a conversational dataset. `rsynth export --format
trl-grpo` writes the `ground_truth` and `domain` columns read here; a dataset that names its
answer `answer`, `solution` or `reference_answer` works too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rsynth.rewards.scorer import Rollout
from rsynth.rewards.shared import batcher_for

TRUTH_COLUMNS = ("ground_truth", "reference_answer", "answer", "solution")


def completion_text(completion: Any) -> str:
    """A completion as text: the assistant turns' contents of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        turns = [m for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return "\n".join(str(m.get("content") or "") for m in turns)
    return "" if completion is None else str(completion)


def make_reward_func(**options: Any) -> Callable[..., list[float]]:
    """A TRL reward function scoring with rsynth's verifiers; `options` are `RewardParams` fields."""
    batcher = batcher_for(options)

    def rsynth_reward(
        prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any
    ) -> list[float]:
        completions = list(completions or [])
        column = next((c for c in TRUTH_COLUMNS if kwargs.get(c) is not None), None)
        if column is None:
            raise ValueError(
                f"rsynth reward: the dataset needs a ground-truth column ({', '.join(TRUTH_COLUMNS)}); "
                "rsynth export --format trl-grpo writes `ground_truth`"
            )
        truths, domains = kwargs[column], kwargs.get("domain") or [None] * len(completions)
        rollouts = [Rollout(t, completion_text(c), d) for t, c, d in zip(truths, completions, domains)]
        rewards = batcher.score(rollouts)
        log = kwargs.get("log_metric")
        if callable(log) and rewards:
            log("rsynth/verified", sum(r.status in ("correct", "pass", "proved") for r in rewards) / len(rewards))
        return [r.score for r in rewards]

    rsynth_reward.__name__ = "rsynth_reward"  # TRL names a function's reward column after it
    return rsynth_reward


def reward_func(prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any) -> list[float]:
    """The default reward (1/0, no shaping, 2 workers): `reward_funcs=[reward_func]`."""
    return make_reward_func()(prompts=prompts, completions=completions, **kwargs)
