"""The Python program a row's text carries, for rows without a solution column.

Code training data often holds the task and its solution in one text field: a rewritten function
with its docstring, or a chat answer with a fenced ```python block ("Here is a rewritten version:").
A rephrased benchmark item in that form keeps neither the item's words nor its name, but its
program still passes the item's tests, so the text's program is the row's reference program
(`keys.row_facts`, as a marked answer in the text is the row's answer) and execution decides.

Only a program that does something counts: at least one top-level function whose body is more
than a docstring, `pass`, `...` or a `raise` (a bare signature with a docstring is a task
statement, not a solution: it fails every test and would wrongly say "another task"). The text is
parsed with `ast` and never run here; it runs only in the sandbox.
"""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#-]*)[^\n]*\n(.*?)```", re.DOTALL)
_PYTHON_TAGS = ("", "python", "py", "python3")
MAX_CHARS = 20_000  # a program longer than this is not a rephrased benchmark solution
MAX_TAILS = 40  # prose lines after unfenced code that are tried away
_STARTS = re.compile(r"(?:def|async\s+def|class|from|import)\s|@\w")


def _implements(node: ast.stmt) -> bool:
    """A function whose body does something (not only a docstring, pass, ... or raise)."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return any(
        not (isinstance(s, (ast.Pass, ast.Raise)) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)))
        for s in body
    )


def _program(code: str) -> str | None:
    if len(code) > MAX_CHARS:
        return None
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # too deeply nested for the parser
        return None
    return code if any(_implements(node) for node in tree.body) else None


def _unfenced(text: str) -> str | None:
    """Code between prose without a fence ("Here is the code:" ... "This version uses a loop."):
    from the first line that starts a program (def, class, import, a decorator) to the last line
    after which the rest still parses, trying at most MAX_TAILS endings, longest first."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _STARTS.match(line)), None)
    if start is None:
        return None
    for end in range(len(lines), max(start, len(lines) - MAX_TAILS), -1):
        if lines[end - 1].strip():
            found = _program("\n".join(lines[start:end]))
            if found:
                return found
    return None


def program_in_text(text: str) -> str | None:
    """The row's program: its one fenced Python block (untagged or tagged python) that defines a
    function doing something, else the whole text when it parses as Python, else the code between
    its prose lines. None when there is none, or when several blocks each hold a program: that is a
    few-shot prompt, whose worked examples are not the row's solution (and would fail the item's
    tests, wrongly saying "another task" for a prompt that embeds an item)."""
    blocks = [body for tag, body in _FENCE.findall(text) if tag.lower() in _PYTHON_TAGS]
    if blocks:
        programs = [p for p in map(_program, blocks) if p]
        return programs[0] if len(programs) == 1 else None  # several: a few-shot prompt's worked examples
    if "def " not in text:
        return None
    return _program(text) or _unfenced(text)
