"""Export formats for verifier and preference training, as pure row conversions.

- `sft-critique` (ThinkPRM / GenPRM: a generative verifier trained on verification chains of thought):
  chat rows `{"messages": [user: the problem and its tagged steps (the ProcessBench critic prompt),
  assistant: the critique]}`, the conversational format TRL's SFTTrainer reads. Rows come from
  `rsynth filter-critiques` (critiques whose verdicts agree with reference labels).
- `step-dpo` (Step-DPO, MCTS-DPO): from the MC tree of annotate-prm, two next steps after the same
  prefix whose MC values differ by at least a margin make `{"prompt": problem + prefix, "chosen":
  the better step, "rejected": the worse}`, the standard format TRL's DPOTrainer reads; each side
  keeps its MC value and the k it was estimated from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import Any

PAIR_FORMATS = ("sft-critique", "step-dpo")


def critique_row(row: dict[str, Any]) -> dict[str, Any]:
    """One SFT chat row from a kept critique (`filter-critiques` output, whose `prompt` is the judge's)."""
    return {
        "messages": [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["critique"]}],
        "id": row["id"],
        "first_error": row["critique_first_error"],
        "reference_first_error": row["reference_first_error"],
    }


def _prompt(question: str, prefix: list[str], separator: str) -> str:
    """The problem, then the shared prefix steps, each followed by the separator: the chosen or
    rejected step continues it directly."""
    return question + separator + "".join(s + separator for s in prefix)


def step_pairs(
    nodes: Iterable[dict[str, Any]], margin: float, separator: str = "\n"
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(pairs, counts) from tree nodes: siblings (same problem, same prefix, different last step)
    whose MC values differ by at least `margin`. The same step reached twice is one node whose
    correct and k are summed; the root (an empty prefix) is no step."""
    groups: dict[tuple[str, str, tuple[str, ...]], dict[str, list[int]]] = defaultdict(dict)
    for n in nodes:
        steps = list(n.get("prefix_steps") or [])
        if not steps or not n.get("k"):
            continue
        key = (str(n.get("problem_id")), n.get("question") or "", tuple(steps[:-1]))
        ck = groups[key].setdefault(steps[-1], [0, 0])
        ck[0] += int(n.get("correct") or 0)
        ck[1] += int(n["k"])
    pairs, counts = [], {"prefixes with two or more next steps": 0, "sibling pairs": 0, "pairs under the margin": 0}
    for (pid, question, prefix), nexts in groups.items():
        if len(nexts) < 2:
            continue
        counts["prefixes with two or more next steps"] += 1
        for (a, (ca, ka)), (b, (cb, kb)) in combinations(sorted(nexts.items()), 2):
            counts["sibling pairs"] += 1
            ma, mb = ca / ka, cb / kb
            if abs(ma - mb) < margin or ma == mb:
                counts["pairs under the margin"] += 1
                continue
            (win, mw, kw), (lose, ml, kl) = ((a, ma, ka), (b, mb, kb)) if ma > mb else ((b, mb, kb), (a, ma, ka))
            pairs.append(
                {
                    "prompt": _prompt(question, list(prefix), separator),
                    "chosen": win,
                    "rejected": lose,
                    "problem_id": pid,
                    "prefix_steps": len(prefix),
                    "chosen_mc": mw,
                    "chosen_k": kw,
                    "rejected_mc": ml,
                    "rejected_k": kl,
                }
            )
    return pairs, counts
