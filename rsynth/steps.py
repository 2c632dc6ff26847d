"""Splitting solutions into steps and extracting their final answers.

Step splitting is configurable because policies format steps differently: `auto` tries explicit
"Step k:" markers, then blank lines, then single newlines. Answer extraction looks, in order of
specificity, for the last `\\boxed{...}` (braces balanced), "The answer is ...", and GSM8K's `#### ...`.
"""

from __future__ import annotations

import re

STEP_MARKER = re.compile(r"(?im)^\s*(?:\*\*)?step\s*\d+\s*[:.)]")
SPLIT_MODES = ("auto", "step", "blank", "newline")
ANSWER_IS = re.compile(r"(?i)the\s+(?:final\s+)?answer\s+is\s*[:：]?[ \t]*")
HASHES = re.compile(r"####\s*(.+)")
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


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` or `\\fbox{...}`, with nested braces balanced."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    i = text.find("{", idx)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _clean_tail(ans: str) -> str:
    ans = ans.strip().splitlines()[0].strip() if ans.strip() else ""
    # sentence punctuation may sit outside the math delimiters ("is $5$."), so drop it before and after
    ans = re.sub(r"[.。]+$", "", ans).strip()
    ans = re.sub(r"^\$+|\$+$", "", ans).strip()
    return ans


def extract_final_answer(text: str) -> str | None:
    """The solution's final answer as written, or None when it states none."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    heads = list(ANSWER_IS.finditer(text))
    if heads:
        ans = text[heads[-1].end() :]  # the last statement wins: "The answer is: The answer is: 20" -> 20
        inner = last_boxed(ans)
        return inner if inner is not None else (_clean_tail(ans) or None)
    matches = HASHES.findall(text)
    if matches:
        return _clean_tail(matches[-1]) or None
    return None
