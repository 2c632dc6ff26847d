"""Line-level labels for code (PRLCoder style) by execution, not by diffing.

Given a solution that passes its tests and a line-wise mutation of it (same number of lines, some
lines changed), the label question is: which changed line is the first one that breaks the tests?
A changed line can be harmless (a renamed variable, an equivalent expression), so the answer is
found by running hybrids: hybrid j is the passing solution with the first j changed lines taken
from the mutant. The first hybrid that does not pass names the first breaking line. All hybrids run
in one sandbox batch, so the cost is one round of executions, not a sequential search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.code import CodeVerifier


@dataclass(frozen=True)
class LineLabels:
    first_error_line: int  # 0-based line of the mutant; -1 when the mutant still passes
    changed_lines: list[int]
    hybrid_status: list[str]  # verdict of hybrid j (first j+1 changed lines applied)
    labels: list[int | None]  # per mutant line: 1 fine, 0 the first breaking line, None after it


def first_breaking_line(
    verifier: CodeVerifier,
    solution: str,
    mutant: str,
    tests: str,
    extra: dict[str, Any] | None = None,
) -> LineLabels:
    """Execute hybrids of `solution` and `mutant` against `tests` to label the mutant's lines."""
    good, bad = solution.split("\n"), mutant.split("\n")
    if len(good) != len(bad):
        raise ValueError(f"mutant has {len(bad)} lines, solution {len(good)}: labels need a line-wise mutation")
    changed = [i for i, (a, b) in enumerate(zip(good, bad)) if a != b]
    hybrids = [solution]
    for j in range(len(changed)):
        lines = list(good)
        for i in changed[: j + 1]:
            lines[i] = bad[i]
        hybrids.append("\n".join(lines))
    verdicts = verifier.verify_batch([VerifyItem(tests, code, extra or {}) for code in hybrids])
    if not verdicts[0].ok:
        raise ValueError(f"the solution itself does not pass its tests ({verdicts[0].status})")
    statuses = [v.status for v in verdicts[1:]]
    breaking = next((changed[j] for j, v in enumerate(verdicts[1:]) if not v.ok), -1)
    if breaking < 0:
        labels: list[int | None] = [1] * len(bad)
    else:
        labels = [1 if i < breaking else 0 if i == breaking else None for i in range(len(bad))]
    return LineLabels(breaking, changed, statuses, labels)
