"""rsynth's verifiers as the reward of RL trainers (RLVR): verl, TRL's GRPOTrainer, OpenRLHF.

- `rsynth.rewards.verl.compute_score(data_source, solution_str, ground_truth, extra_info=None)`
- `rsynth.rewards.trl.reward_func(prompts, completions, **columns) -> list[float]`
- `rsynth.rewards.openrlhf.reward_func(queries, prompts, labels)` and `rsynth serve-reward` (HTTP)
- `RewardScorer(RewardParams(...)).score([Rollout(ground_truth, completion, domain)])` underneath.

Rewards are 1/0 by default (a hedged answer, a timeout or no answer is 0); `RewardParams` holds
the optional format and length terms. This package imports neither typer nor the CLI, and loads
its verifiers only when scoring starts.
"""

from __future__ import annotations

from rsynth.rewards.params import RewardParams
from rsynth.rewards.scorer import Batcher, Reward, RewardScorer, Rollout

__all__ = ["Batcher", "Reward", "RewardParams", "RewardScorer", "Rollout"]
