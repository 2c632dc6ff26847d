"""Splitting solutions into steps (answer extraction lives in `rsynth.answers`).

Step splitting is configurable because policies format steps differently: `auto` tries explicit
"Step k:" markers, then blank lines, then single newlines.
"""

from __future__ import annotations

import re

STEP_MARKER = re.compile(r"(?im)^\s*(?:\*\*)?step\s*\d+\s*[:.)]")
SPLIT_MODES = ("auto", "step", "blank", "newline")
NUMBERED = re.compile(r"^\s*\d+[.)]\s")


def split_steps(text: str, mode: str = "auto") -> list[str]:
    """Split a solution into non-empty, stripped steps."""
    if mode not in SPLIT_MODES:
        raise ValueError(f"unknown step split mode {mode!r} (expected one of {', '.join(SPLIT_MODES)})")
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return []
    if mode in ("auto", "step") and len(STEP_MARKER.findall(text)) >= (2 if mode == "auto" else 1):
        starts = [m.start() for m in STEP_MARKER.finditer(text)]
        head = text[: starts[0]].strip()
        parts = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
        steps = ([head] if head else []) + parts
    elif mode == "step":
        steps = [text]
    elif mode == "blank":
        steps = re.split(r"\n\s*\n", text)
    elif mode == "auto" and re.search(r"\n\s*\n", text):
        steps = [item for para in re.split(r"\n\s*\n", text) for item in _numbered_items(para)]
    else:
        steps = text.split("\n")
    return [s.strip() for s in steps if s.strip()]


def _numbered_items(paragraph: str) -> list[str]:
    """A paragraph written as a numbered list ("1. ... 2. ...") is one step per item; small models
    often put a whole solution in one such paragraph between an intro and the answer line."""
    lines = paragraph.split("\n")
    if sum(bool(NUMBERED.match(line)) for line in lines) < 2:
        return [paragraph]
    items: list[list[str]] = []
    for line in lines:
        if NUMBERED.match(line) or not items:
            items.append([line])
        else:
            items[-1].append(line)
    return ["\n".join(item) for item in items]


def join_steps(steps: list[str]) -> str:
    """The inverse of blank-line splitting: how prefixes are written back into a prompt."""
    return "\n\n".join(steps)
