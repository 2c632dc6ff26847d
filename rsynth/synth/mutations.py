"""Single-line mutations of Python programs, for PRLCoder-style line labels by execution.

Each mutant changes exactly one line with one classic mutation operator (comparison, arithmetic,
boolean, constant off-by-one, negated condition). Whether the change breaks the program is not
guessed from the operator: the mutant is run against the tests, and only a failing mutant marks
its line as the first error (an equivalent mutant keeps every line good).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (name, pattern, replacement) tried in order; the first that matches outside strings/comments wins.
OPERATORS: tuple[tuple[str, str, str], ...] = (
    ("<= to <", r"<=", "<"), (">= to >", r">=", ">"), ("< to <=", r"(?<![<>=!])<(?![<=])", "<="),
    ("> to >=", r"(?<![<>=!-])>(?![>=])", ">="), ("== to !=", r"==", "!="), ("!= to ==", r"!=", "=="),
    ("and to or", r"\band\b", "or"), ("or to and", r"\bor\b", "and"),
    ("True to False", r"\bTrue\b", "False"), ("False to True", r"\bFalse\b", "True"),
    ("+ to -", r"(?<![+\-*/=<>!])\+(?![+=])", "-"), ("- to +", r"(?<![+\-*/=<>!e])-(?![-=>])", "+"),
    ("* to //", r"(?<![*])\*(?![*=])", "//"), ("constant + 1", r"(?<![\w.])(\d+)(?![\w.])", "+1"),
    ("negate condition", r"^(\s*)(if|while|elif) (.+):\s*$", "not"),
)


@dataclass(frozen=True)
class Mutant:
    line: int  # 0-based index into the program's lines
    operator: str
    program: str


def _code_part(line: str) -> int:
    """Where a trailing comment starts (strings are skipped), so comments are never mutated."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return i
    return len(line)


def mutate_line(line: str) -> tuple[str, str] | None:
    """(mutated line, operator) for the first operator that applies, or None."""
    stripped = line.strip()
    if not stripped or stripped.startswith(("#", "def ", "class ", "import ", "from ", '"""', "'''", "@")):
        return None
    cut = _code_part(line)
    code, comment = line[:cut], line[cut:]
    masked = re.sub(r"([\"']).*?\1", lambda m: "\0" * len(m.group(0)), code)  # keep string literals intact
    for name, pattern, repl in OPERATORS:
        m = re.search(pattern, masked, flags=re.M)
        if not m:
            continue
        if repl == "+1":
            new = code[: m.start()] + str(int(m.group(1)) + 1) + code[m.end() :]
        elif repl == "not":
            new = f"{m.group(1)}{m.group(2)} not ({code[m.start(3) : m.end(3)].rstrip()}):"
        else:
            new = code[: m.start()] + repl + code[m.end() :]
        if new != code:
            return new + comment, name
    return None


def line_mutants(program: str, limit: int | None = None) -> list[Mutant]:
    """One mutant per mutable line, top to bottom (at most `limit`)."""
    lines = program.split("\n")
    out: list[Mutant] = []
    for i, line in enumerate(lines):
        changed = mutate_line(line)
        if changed is None:
            continue
        out.append(Mutant(i, changed[1], "\n".join(lines[:i] + [changed[0]] + lines[i + 1 :])))
        if limit is not None and len(out) >= limit:
            break
    return out
