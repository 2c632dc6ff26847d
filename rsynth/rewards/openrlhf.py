"""OpenRLHF's remote reward: `--remote_rm_url` pointing at this file (a custom `reward_func`) or at
`rsynth serve-reward` (HTTP). Both receive what OpenRLHF 0.8.11 sends
(`openrlhf/utils/remote_rm_utils.py`): `queries` (prompt + response, decoded WITH special tokens),
`prompts` (the chat-templated prompt) and `labels` (the `--label_key` column: the ground truth);
both answer `{"rewards": [...], "scores": [...]}` (`update_samples_with_rewards` reads those keys).
"""

from __future__ import annotations

import re
from typing import Any

from rsynth.rewards.scorer import Reward, Rollout
from rsynth.rewards.shared import batcher_for

# end-of-turn and padding tokens a decode with skip_special_tokens=False leaves after the response
_TRAILING_SPECIAL = re.compile(r"(?:\s*(?:<\|[A-Za-z_]{1,40}\|>|</s>|<eos>|<end_of_turn>|<pad>))+\s*$")


def response_of(query: str, prompt: str | None) -> str:
    """The model's response inside an OpenRLHF query: the text after the prompt, end tokens dropped."""
    text = query or ""
    if prompt and text.startswith(prompt):
        text = text[len(prompt) :]
    elif prompt and prompt.strip() and prompt.strip() in text:
        text = text.split(prompt.strip(), 1)[1]
    return _TRAILING_SPECIAL.sub("", text)


def rollouts(
    queries: list[str], prompts: list[str] | None, labels: list[Any] | None, domains: list[str | None] | None = None
) -> list[Rollout]:
    n = len(queries)
    prompts = prompts or [None] * n
    labels = labels if labels is not None else [None] * n
    domains = domains or [None] * n
    if not (len(prompts) == len(labels) == len(domains) == n):
        raise ValueError(
            f"query, prompts, labels (and domains) must have one entry each: got {n}, {len(prompts)}, "
            f"{len(labels)}, {len(domains)}"
        )
    return [Rollout(lab, response_of(q, p), d) for q, p, lab, d in zip(queries, prompts, labels, domains)]


def response_body(rewards: list[Reward]) -> dict[str, Any]:
    scores = [r.score for r in rewards]
    return {"rewards": scores, "scores": scores, "statuses": [r.status for r in rewards]}


def reward_func(queries: list[str], prompts: list[str], labels: list[Any], **options: Any) -> dict[str, Any]:
    """OpenRLHF's custom reward function (`--remote_rm_url /path/to/rsynth/rewards/openrlhf.py`)."""
    return response_body(batcher_for(options).score(rollouts(queries, prompts, labels)))
