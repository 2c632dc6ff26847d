"""The optional LLM judge for pairs the signature and the embedding leave uncertain.

Same question as the LLM Decontaminator (Yang et al. 2023): shown a training row and its nearest
benchmark item, is it the same problem? Greedy decoding and a one-word answer keep the verdict
deterministic and cheap; the engine is wrapped in the completion cache by the caller, so a re-run
asks nothing twice. The model's text is only compared with fixed words, never evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rsynth.engines.base import Engine, Prompt, SamplingParams

SYSTEM = "You compare two problems and answer with one word."
TEMPLATE = (
    "Are these two the same problem? They are the same when one is a rewording of the other: the same "
    "quantities and the same question, even if names, word order or number formatting differ. They are "
    "different when a quantity differs or when they ask for different things.\n\n"
    "Problem 1:\n{row}\n\nProblem 2:\n{item}\n\n"
    "Answer True if they are the same problem, otherwise False."
)
PARAMS = SamplingParams(n=1, temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_VERDICTS = {
    "true": "same",
    "yes": "same",
    "same": "same",
    "false": "different",
    "no": "different",
    "different": "different",
}


def prompt(row: str, item: str) -> Prompt:
    return Prompt.user(TEMPLATE.format(row=row.strip(), item=item.strip()), system=SYSTEM)


def parse(text: str) -> str:
    """'same', 'different', or 'unclear: <answer>' from the judge's reply (first word decides)."""
    m = _FIRST_WORD.search(text)
    word = m.group(0).lower() if m else ""
    return _VERDICTS.get(word, f"unclear: {text.strip()[:40]!r}")


def ask_judge(engine: Engine, pairs: Sequence[tuple[str, str]]) -> list[str]:
    """One verdict per (row text, item text) pair, in one batched engine call."""
    if not pairs:
        return []
    replies = engine.generate([prompt(row, item) for row, item in pairs], PARAMS)
    return [parse(r[0].text if r else "") for r in replies]
