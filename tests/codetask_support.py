"""A scripted proposer and solver for `generate code-tasks` tests: a real `Engine`, served over HTTP by
tests/openai_server.py, whose replies are planned from the prompt.

Proposals cycle through a valid program, one that imports a forbidden module, one whose output
depends on string hashing (different in every interpreter: caught by the two-run check) and a reply
with no code. The solver answers deduction and abduction from a table of the proposed functions and
gets the first attempt of each request right and the others wrong, so every task's solve rate is
1/n; induction replies are the right program on the first attempt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams

PROPOSALS = [
    "```python\ndef f(x, y):\n    return [x * y, x + y]\n```\n```input\n2, 3\n4, 5\n1, 1\n```\nMessage: product and sum.",
    "```python\nimport random\n\ndef f(x):\n    return random.random() + x\n```\n```input\n1\n```\nMessage: noise.",
    "```python\ndef f(s):\n    return hash(s) % 1000003\n```\n```input\n'abc'\n'xyz'\n```\nMessage: a hash.",
    "I would rather not write a program today.",
]
FUNCTIONS = {"return [x * y, x + y]": lambda x, y: [x * y, x + y]}


class ScriptedCoder(Engine):
    name = "scripted-coder"

    def __init__(self, model: str = "scripted") -> None:
        super().__init__(model)
        self.proposed = 0

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for p in prompts:
            text = p.messages[-1][1]
            if text.startswith("You design code reasoning puzzles"):
                replies = []
                for _ in range(params.n):
                    replies.append(PROPOSALS[self.proposed % len(PROPOSALS)])
                    self.proposed += 1
            else:
                replies = [self.solve(text, right=i == 0) for i in range(params.n)]
            out.append([Completion(r, len(r.split()), "stop") for r in replies])
        return out

    @staticmethod
    def solve(prompt: str, right: bool) -> str:
        if prompt.startswith("Write a Python function"):
            body = "return [x * y, x + y]" if right else "return [x, y]"
            return f"```python\ndef f(x, y):\n    {body}\n```"
        if "Returned value:" in prompt:  # abduction: [6, 5] <- (2, 3)
            return (
                "<answer>2, 3</answer>" if right else "<answer>0) or True\ndef rsynth_case(i): return [6, 5]#</answer>"
            )
        call = re.search(r"Call: `f\((.*)\)`", prompt)
        x, y = (int(v) for v in call.group(1).split(","))
        return f"<answer>{[x * y, x + y] if right else [0]}</answer>"
