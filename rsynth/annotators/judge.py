"""LLM-as-judge first-error labels: the ProcessBench critic prompt, verdict parsing and the vote.

Pure functions, no engine: `rsynth.stages.judge` sends the prompts and hands back the texts.

MC estimation asks the policy whether a prefix can still reach the answer, so a lucky recovery or a
flawed step that happens to reach the right number passes as correct ("The Lessons of Developing
Process Reward Models in Mathematical Reasoning"). A judge reads the steps themselves; where both
sources name the same first error, the label is far more trustworthy than either alone.

Rules that keep the labels honest:
- a verdict is the integer in the judge's last `\\boxed{}`; anything else (no box, prose, an index
  outside -1..M-1) is *unparseable* and is never read as -1 ("no error");
- the vote counts parseable verdicts only; ties go to the earliest claimed error, and -1 wins only
  with a strict plurality, so disagreement never turns a trace into an all-correct one;
- agreement is the winner's share of *all* judgements, so unparseable ones lower it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rsynth.answers import last_boxed

TEMPLATE_NAME = "processbench-critic"

# The critic prompt of ProcessBench (QwenLM/ProcessBench, code/run_eval.py), verbatim in shape:
# paragraphs tagged and indexed from 0, the earliest wrong one (or -1) in \boxed{}.
CRITIC_TEMPLATE = (
    "The following is a math problem and a solution (split into paragraphs, enclosed with tags and indexed from 0):\n\n"
    "[Math Problem]\n\n{problem}\n\n[Solution]\n\n{tagged_response}\n\n"
    "Your task is to review and critique the solution paragraph by paragraph. Once you identify an error in a paragraph, "
    "return the index of the paragraph where the earliest error occurs. Otherwise, return the index of -1 (which typically "
    'denotes "not found").\n\nPlease put your final answer (i.e., the index) in \\boxed{{}}.'
)

_INDEX = re.compile(r"\s*\$?\s*(?:paragraph[_ ]?)?(-?\d+)\s*\$?\s*")


def tagged_response(steps: Sequence[str]) -> str:
    return "\n\n".join(f"<paragraph_{i}>\n{s}\n</paragraph_{i}>" for i, s in enumerate(steps))


def critic_prompt(problem: str, steps: Sequence[str]) -> str:
    """The user message asking for the earliest wrong step of `steps`."""
    return CRITIC_TEMPLATE.format(problem=problem, tagged_response=tagged_response(steps))


def parse_first_error(text: str, num_steps: int) -> int | None:
    """The judge's first-error index, or None when the reply states no usable index.

    Only the last `\\boxed{}` counts (a critique may box intermediate results first); the index must
    name a step of this trace or be -1. The text is matched, never evaluated.
    """
    boxed = last_boxed(text)
    if boxed is None:
        return None
    m = _INDEX.fullmatch(boxed)
    if m is None:
        return None
    index = int(m.group(1))
    return index if -1 <= index < num_steps else None


@dataclass(frozen=True)
class JudgeVote:
    first_error: int | None  # None: no judgement was parseable
    agreement: float  # winner's votes / all judgements (0.0 when none parsed)
    unparsed: int


def majority_vote(verdicts: Sequence[int | None]) -> JudgeVote:
    """Combine the parsed verdicts of one trace; see the module docstring for the tie rule."""
    unparsed = sum(v is None for v in verdicts)
    counts = Counter(v for v in verdicts if v is not None)
    if not counts:
        return JudgeVote(None, 0.0, unparsed)
    winner, votes = min(counts.items(), key=lambda kv: (-kv[1], kv[0] == -1, kv[0]))
    return JudgeVote(winner, votes / len(verdicts), unparsed)
