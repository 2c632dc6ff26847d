"""I/O examples stated in a code task's text, as assert tests: a code row's behaviour without a program.

A rewritten code task keeps its examples more often than its words ("hcf(25, 15) should be 5",
"`>>> strlen('abc')` / `3`", "sorted_uniques([5, 3, 5, 2]) returns [2, 3, 5]"). Run against a
retrieved benchmark item's canonical solution (with the row's function name bound to the item's
entry point), they tell the same task from a sibling even when the row has no reference program:
a sibling's solution gives other outputs. Only literal arguments and results count (parsed with
`ast.literal_eval`, never evaluated as code), and only examples that say something: two or more, or
one whose result is not a boolean, None, 0, 1 or empty (one `f(2) is False` is passed by half the
predicates there are). A call stated with two different results ("returns 326 but should return
131") keeps the one marked by "should"/"expected", or is dropped. A markdown I/O table ("| input |
output |" and one example per line) states examples too (`table_examples`).
"""

from __future__ import annotations

import ast
import re

_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")
_ARROW = re.compile(
    r"\s*(?:==>|=>|==|->|➞|→|:\s*(?=[\[\(\d'\"-]))\s*"
    r"|\s+(?:(?:should|must|ought\s+to)\s+(?:be|return|give|equal|output)|is\s+expected\s+to\s+be|"
    r"(?:returns?|gives?|outputs?|yields?|equals?|is)(?:\s+(?:back|just))?)\s+",
    re.IGNORECASE,
)
_BUT = re.compile(r"\s*[,;]?\s*(?:but|whereas|while|though|instead\s+of\s+what)(?:\s+it)?(?=\s)", re.IGNORECASE)
_MARKED = re.compile(r"should|must|ought|expected", re.IGNORECASE)
_TRIVIAL = (True, False, None, 0, 1, "", (), [], {})
MAX_EXAMPLES = 12


def _balanced(text: str, start: int) -> int | None:
    """End (exclusive) of the bracketed group opening at `start`, or None."""
    depth, quote = 0, None
    for i in range(start, min(len(text), start + 400)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _literal(text: str) -> tuple[bool, object]:
    try:
        return True, ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _result(text: str, start: int) -> tuple[bool, object, int]:
    """The literal that starts at `start` (a number, string, True/False/None, a bracketed value), and its end."""
    rest = text[start : start + 300]
    if rest[:1] in "([{":
        end = _balanced(rest, 0)
        return (*_literal(rest[:end]), start + end) if end else (False, None, start)
    m = re.match(r"""-?\d+(?:\.\d+)?(?:e-?\d+)?|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|True|False|None""", rest)
    return (*_literal(m.group(0)), start + m.end()) if m else (False, None, start)


def _doctest_results(text: str) -> dict[int, str]:
    """Offset of each `>>> call` line's call -> the text of the next line (its result)."""
    out = {}
    lines = text.splitlines(keepends=True)
    offset = 0
    for i, line in enumerate(lines):
        s = line.lstrip()
        if s.startswith(">>>") and i + 1 < len(lines) and not lines[i + 1].lstrip().startswith(">>>"):
            out[offset + len(line) - len(s) + 3] = lines[i + 1].strip()
        offset += len(line)
    return out


def stated_examples(text: str) -> list[tuple[str, str, str]]:
    """(function, args source, result repr) for each example stated in `text`, in order."""
    found: dict[tuple[str, str], list[tuple[bool, str]]] = {}
    doctests = _doctest_results(text)
    for m in _CALL.finditer(text):
        name = m.group(1)
        if name in ("print", "assert", "def", "return", "len", "if", "while", "for", "range", "isclose"):
            continue
        end = _balanced(text, m.end() - 1)
        if end is None:
            continue
        ok, args = _literal("(" + text[m.end() : end - 1] + ",)") if text[m.end() : end - 1].strip() else (True, ())
        if not ok:
            continue
        after = re.match(r"\s*\n\s*", text[end:])
        doc = next((v for k, v in doctests.items() if m.start() <= k + 1 <= m.start() + 8), None)
        results = found.setdefault((name, repr(args)), [])
        if doc is not None and after is not None:
            good, value = _literal(doc)
            if good:
                results.append((False, repr(value)))
            continue
        while (arrow := _ARROW.match(text, end)) is not None:  # "returns 326 but should return 131"
            good, value, end = _result(text, arrow.end())
            if not good:
                break
            results.append((bool(_MARKED.search(arrow.group(0))) or "==" in arrow.group(0), repr(value)))
            but = _BUT.match(text, end)
            if but is None:
                break
            end = but.end()
    for name, args, result in table_examples(text):
        found.setdefault((name, args), []).append((False, result))
    out = []
    for (name, args), results in found.items():
        if not results:
            continue
        values = {v for _, v in results}
        if len(values) > 1:
            marked = {v for mk, v in results if mk}
            if len(marked) != 1:
                continue  # two results for one call, neither (or both) marked as the expected one
            values = marked
        out.append((name, args, values.pop()))
    return out[:MAX_EXAMPLES]


_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_RULE = re.compile(r"^[\s|:-]+$")
_NAMED = re.compile(r"([A-Za-z_]\w*)\s*\(")
TABLE_NAME = "f"  # the function of a table whose text names none (bound to the item's entry point when run)


def table_examples(text: str) -> list[tuple[str, str, str]]:
    """(function, args source, result repr) for each data row of a markdown I/O table (lines of
    `| ... |` cells, a header and a rule line optional): the last column is the result, the others
    the arguments (one column may hold several: "[], 'a'"). A row whose cells are not all literals
    (the header) only names the function, when its last column calls one ("| n | triangle_total(n)
    |"); else the function is the text's own, else `TABLE_NAME`."""
    from rsynth.decontam.signature import functions

    out: list[tuple[str, str, str]] = []
    name, width = None, 0
    for line in [*text.splitlines(), ""]:
        row = _TABLE_ROW.match(line)
        if row is None:
            name, width = None, 0  # a table ends
            continue
        if _RULE.match(row.group(1)):
            continue
        cells = [c.strip() for c in row.group(1).split("|")]
        ok, args = _literal("(" + ", ".join(cells[:-1]) + ",)") if len(cells) >= 2 else (False, None)
        good, value = _literal(cells[-1])
        if not (ok and good):
            if not width:  # the header
                named = _NAMED.search(cells[-1])
                name, width = (named.group(1) if named else None), len(cells)
            continue
        if width and len(cells) != width:
            continue
        out.append((name or next(iter(functions(text)), TABLE_NAME), repr(args), repr(value)))
    return out


def stated_tests(text: str) -> str | None:
    """Assert lines for the examples of `text`'s main function, when they say enough (module docstring)."""
    examples = stated_examples(text)
    if not examples:
        return None
    counts: dict[str, int] = {}
    for name, _, _ in examples:
        counts[name] = counts.get(name, 0) + 1
    main = max(counts, key=lambda n: counts[n])
    mine = [(a, r) for n, a, r in examples if n == main]
    informative = len(mine) >= 2 or any(_literal(r)[1] not in _TRIVIAL for _, r in mine)
    if not informative:
        return None
    lines = []
    for args, result in mine:
        call = f"{main}{args[:-2] + ')' if args.endswith(',)') else args}"
        value = _literal(result)[1]
        if isinstance(value, float):
            lines.append(f"assert abs({call} - {result}) <= 1e-6 * max(1.0, abs({result}))")
        else:
            lines.append(f"assert {call} == {result}")
    return "\n".join(lines) + "\n"
