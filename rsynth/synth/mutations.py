"""Single-line mutations of Python programs, for PRLCoder-style line labels by execution.

Each mutant changes exactly one line with one classic mutation operator (comparison, arithmetic,
boolean, constant off-by-one, negated condition). Whether the change breaks the program is not
guessed from the operator: the mutant is run against the tests, and only a failing mutant marks
its line as the first error (an equivalent mutant keeps every line good).

Which lines may change is read from the program's syntax tree (`executable_lines`), not its text:
docstrings and other lines inside a multi-line string are data, so a "mutant" there would pass
and only add a near-duplicate all-good row.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# (name, pattern, replacement) tried in order; the first that matches outside strings/comments wins.
OPERATORS: tuple[tuple[str, str, str], ...] = (
    ("<= to <", r"<=", "<"),
    (">= to >", r">=", ">"),
    ("< to <=", r"(?<![<>=!])<(?![<=])", "<="),
    ("> to >=", r"(?<![<>=!-])>(?![>=])", ">="),
    ("== to !=", r"==", "!="),
    ("!= to ==", r"!=", "=="),
    ("and to or", r"\band\b", "or"),
    ("or to and", r"\bor\b", "and"),
    ("True to False", r"\bTrue\b", "False"),
    ("False to True", r"\bFalse\b", "True"),
    ("+ to -", r"(?<![+\-*/=<>!])\+(?![+=])", "-"),
    ("- to +", r"(?<![+\-*/=<>!e])-(?![-=>])", "+"),
    ("* to //", r"(?<![*])\*(?![*=])", "//"),
    ("constant + 1", r"(?<![\w.])(\d+)(?![\w.])", "+1"),
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


def _parse(program: str) -> tuple[ast.Module, int] | None:
    """The syntax tree and the line offset it was parsed at: a body-only program (HumanEval's indented
    completions) parses inside an `if True:` wrapper. None: not Python, nothing is known executable."""
    for head in ("", "if True:\n"):
        try:
            return ast.parse(head + program), head.count("\n")
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
    return None


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def executable_lines(program: str) -> set[int]:
    """0-based indices of the lines holding executable code: statement lines (a compound
    statement's header only, its body counted on its own), minus string-only statements
    (docstrings) and every line a multi-line string literal spans."""
    parsed = _parse(program)
    if parsed is None:
        return set()
    tree, offset = parsed
    lines: set[int] = set()
    strings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not _is_docstring(node):
            body = getattr(node, "body", None)
            end = (
                body[0].lineno - 1
                if isinstance(body, list) and body and isinstance(body[0], ast.stmt)
                else node.end_lineno
            )
            lines.update(range(node.lineno, max(end, node.lineno) + 1))
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and node.end_lineno != node.lineno:
            strings.update(range(node.lineno, node.end_lineno + 1))
    return {n - 1 - offset for n in lines - strings if n > offset}


def line_mutants(program: str, limit: int | None = None) -> list[Mutant]:
    """One mutant per mutable executable line, top to bottom (at most `limit`)."""
    lines = program.split("\n")
    executable = executable_lines(program)
    out: list[Mutant] = []
    for i, line in enumerate(lines):
        changed = mutate_line(line) if i in executable else None
        if changed is None:
            continue
        out.append(Mutant(i, changed[1], "\n".join(lines[:i] + [changed[0]] + lines[i + 1 :])))
        if limit is not None and len(out) >= limit:
            break
    return out
