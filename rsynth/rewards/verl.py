"""verl's custom reward function: `custom_reward_function.path=pkg://rsynth.rewards.verl`,
`custom_reward_function.name=compute_score` (or `compute_score_async`).

verl 0.9.1's reward manager (`verl/experimental/reward_loop/reward_manager/naive.py`) calls
`compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)` once per sample
from a thread pool, with `custom_reward_function.reward_kwargs` merged in as keyword arguments
(`workers`, `math_timeout`, ... of `RewardParams`; other keys verl adds are ignored). Concurrent
calls are gathered into one verifier batch (`Batcher`); the async variant lets verl's event loop
wait without a thread each.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rsynth.rewards.scorer import Rollout
from rsynth.rewards.shared import batcher_for


def _rollout(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None) -> Rollout:
    hint = (extra_info or {}).get("domain") if isinstance(extra_info, dict) else None
    return Rollout(ground_truth, solution_str or "", hint or data_source)


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **options: Any
) -> float:
    """1.0 when rsynth's verifier accepts the solution, else 0.0 (plus any optional terms)."""
    return batcher_for(options).score([_rollout(data_source, solution_str, ground_truth, extra_info)])[0].score


async def compute_score_async(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **options: Any
) -> float:
    fut = batcher_for(options).submit([_rollout(data_source, solution_str, ground_truth, extra_info)])
    return (await asyncio.wrap_future(fut))[0].score


def compute_score_batch(
    data_sources: list[str],
    solution_strs: list[str],
    ground_truths: list[Any],
    extra_infos: list[dict[str, Any] | None] | None = None,
    **options: Any,
) -> list[float]:
    """verl's batch reward manager signature: one call for the whole batch."""
    infos = extra_infos or [None] * len(solution_strs)
    rollouts = [_rollout(d, s, g, e) for d, s, g, e in zip(data_sources, solution_strs, ground_truths, infos)]
    return [r.score for r in batcher_for(options).score(rollouts)]
