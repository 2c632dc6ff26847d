"""Prompt + ground-truth rows for RL trainers with verifiable rewards, as pure row conversions.

One row per problem (traces of the same problem collapse into one prompt). The ground truth is the
problem's `reference_answer` as rsynth's verifiers take it: a math answer, a code task's JSON test
spec (`{"tests", "style", "entry_point"}`: the tests travel with the row), or a Lean theorem statement.
`rsynth.rewards` reads exactly these columns back. Checked against each trainer's loading code:

- verl 0.9.1 (`verl/utils/dataset/rl_dataset.py` RLHFDataset; `reward_loop/reward_manager/naive.py`):
  parquet with `data_source` (str), `prompt` (chat messages), `ability`, `reward_model: {style: "rule",
  ground_truth}`, `extra_info` (a dict; RLHFDataset reads `extra_info["index"]`, the reward manager
  passes the dict to `compute_score`).
- open-instruct (`open_instruct/dataset_transformation.py` `rlvr_tokenize_v3`, registered as
  `rlvr_tokenize_v1`; `ground_truth_utils` picks the verifier by `dataset.lower()`): `messages` (the
  prompt, not ending with an assistant turn), `ground_truth` (str), `dataset` (the verifier name:
  `math` is open-instruct's own math verifier). OpenRLHF's PromptDataset reads the same rows with
  `--input_key messages --label_key ground_truth --apply_chat_template`.
- TRL 1.13.0 GRPOTrainer (`_calculate_rewards`): `prompt` (chat messages); every other column is
  passed to reward functions as a keyword argument holding one value per completion.
"""

from __future__ import annotations

import json
from typing import Any

RL_FORMATS = ("verl", "tulu", "trl-grpo")
MATH_PROMPT = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
ABILITY = {"math": "math", "code": "code", "lean": "theorem-proving"}


class RLExportError(Exception):
    """A row that cannot become an RL prompt (no problem text or no ground truth)."""


def data_source(domain: str) -> str:
    """verl's `data_source`: `rsynth.rewards.compute_score` reads the domain back from it."""
    return f"rsynth/{domain}"


def prompt_text(row: dict[str, Any], instructions: dict[str, str]) -> str:
    """The user turn: the domain's instruction around the problem (code: the task prompt; lean:
    the theorem statement to prove)."""
    domain = row.get("domain") or "math"
    if domain == "lean":
        return instructions["lean"].format(statement=row["reference_answer"].strip())
    if domain == "code":
        return instructions["code"].format(prompt=row["problem"])
    return instructions.get("math", MATH_PROMPT).format(problem=row["problem"])


def rl_row(row: dict[str, Any], fmt: str, index: int, instructions: dict[str, str]) -> dict[str, Any]:
    """One problem (or one trace standing for its problem) as a row of `fmt`."""
    domain = row.get("domain") or "math"
    pid = str(row.get("problem_id") or row.get("id") or index)
    truth = row.get("reference_answer")
    if not (row.get("problem") or "").strip() and domain != "lean":
        raise RLExportError(f"row {pid!r}: no problem text")
    if truth is None or not str(truth).strip():
        raise RLExportError(f"row {pid!r}: no reference_answer, so no reward can be computed")
    messages = [{"role": "user", "content": prompt_text(row, instructions)}]
    if fmt == "verl":
        return {
            "data_source": data_source(domain),
            "prompt": messages,
            "ability": ABILITY.get(domain, domain),
            "reward_model": {"style": "rule", "ground_truth": truth},
            "extra_info": {"index": index, "id": pid, "domain": domain, "split": "train"},
        }
    if fmt == "tulu":
        return {"messages": messages, "ground_truth": truth, "dataset": domain, "id": pid}
    if fmt == "trl-grpo":
        return {"prompt": messages, "ground_truth": truth, "domain": domain, "id": pid}
    raise RLExportError(f"--format {fmt!r}: expected one of {', '.join(RL_FORMATS)}")


def rl_rows(rows: Any, fmt: str, instructions: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of `fmt`, one per distinct problem (first occurrence wins), and the counts of what was
    merged or left out (with the first reason, so a user sees why)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    merged = skipped = 0
    first_reason = ""
    for row in rows:
        key = json.dumps(
            [
                row.get("domain") or "math",
                row.get("problem_id") or row.get("id") or row.get("problem"),
                row.get("reference_answer"),
            ],
            ensure_ascii=False,
        )
        if key in seen:
            merged += 1
            continue
        try:
            out.append(rl_row(row, fmt, len(out), instructions))
        except RLExportError as exc:
            skipped += 1
            first_reason = first_reason or str(exc)
            continue
        seen.add(key)
    counts: dict[str, Any] = {
        "rows written": len(out),
        "rows of an already written problem (merged)": merged,
        "rows without problem or ground truth (skipped)": skipped,
    }
    if first_reason:
        counts["first skipped"] = first_reason
    return out, counts
