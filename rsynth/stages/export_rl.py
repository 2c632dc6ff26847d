"""`rsynth export --format verl|tulu|trl-grpo`: one RL prompt per problem of any rsynth output
(problems, solutions, labelled traces), with the ground truth `rsynth.rewards` scores against.

The code and Lean prompts are the ones rsynth's own stages sample with (`codegen.SOLVE_INSTRUCTION`,
`formal.PROVE_INSTRUCTION`), so a policy trained on them answers in the form the reward reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsynth.data.formats import ExportError
from rsynth.data.formats_rl import MATH_PROMPT, rl_rows
from rsynth.stages.codegen import SOLVE_INSTRUCTION
from rsynth.stages.formal import PROVE_INSTRUCTION

INSTRUCTIONS = {"math": MATH_PROMPT, "code": SOLVE_INSTRUCTION, "lean": PROVE_INSTRUCTION}
TRAINERS = {
    "verl": "verl 0.9.1: data.train_files=OUT reward.custom_reward_function.path=pkg://rsynth.rewards.verl "
    "reward.custom_reward_function.name=compute_score",
    "tulu": "open-instruct: --dataset_mixer_list OUT 1.0 (verifier chosen by the `dataset` column); OpenRLHF: "
    "--prompt_data OUT --input_key messages --label_key ground_truth --apply_chat_template "
    "--remote_rm_url http://HOST:PORT/ (rsynth serve-reward)",
    "trl-grpo": "TRL 1.13.0: GRPOTrainer(reward_funcs=rsynth.rewards.trl.reward_func, train_dataset=OUT)",
}


def rl_export(input: Path, out: Path, fmt: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The `fmt` rows of `input`'s data split, and counts naming how to train on `out`."""
    from rsynth.data.shards import iter_split_rows

    rows, counts = rl_rows(iter_split_rows(input, "data"), fmt, INSTRUCTIONS)
    if not rows:
        reason = counts.get("first skipped", "its data split is empty")
        raise ExportError(f"{input}: nothing to export as {fmt}: {reason}")
    counts["train with"] = TRAINERS[fmt].replace("OUT", str(out))
    return rows, counts
