"""Absolute Zero code reasoning tasks as pure functions: seed programs, proposals, prompts, answers.

"Absolute Zero: Reinforced Self-play Reasoning with Zero Data" builds three task types from one
program `f` and its inputs, each checked by running code:
- deduction: program + input -> the output;
- abduction: program + output -> an input that gives it (any such input is right);
- induction: visible input/output pairs + a message -> a program passing held-back pairs.

Nothing here runs a program: this module parses (never evaluates) and builds the text that the
sandbox runs (`rsynth.stages.codetasks`). Inputs and outputs are Python literals, read with
`ast.literal_eval` and written back with `repr`, so a solver's answer never reaches the program as
source text: the sandbox only ever sees the `repr` of a parsed literal.

Every check is one "probe" program: the task's program (or the solver's, for induction) followed
by `rsynth_case(i)`, which calls the entry point on the i-th case's literal arguments. The code
verifier's io style calls `rsynth_case(i)` and compares the result with the expected literal, so a
task's `tests`/`entry_point` columns are exactly what `rsynth verify code --style io` reads.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

TASK_TYPES = ("deduction", "abduction", "induction")
CASE_FN = "rsynth_case"
MAX_LITERAL_CHARS = 300  # an input or output longer than this makes a poor reasoning task
# Modules and builtins a valid task program may not use (Absolute Zero bans I/O, randomness, time,
# processes and introspection; the sandbox would contain them, but the task would not be deterministic
# or would not be about reasoning).
FORBIDDEN_MODULES = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "socket",
        "shutil",
        "pathlib",
        "io",
        "random",
        "time",
        "datetime",
        "threading",
        "multiprocessing",
        "asyncio",
        "signal",
        "ctypes",
        "importlib",
        "pickle",
        "marshal",
        "tempfile",
        "glob",
        "urllib",
        "http",
        "secrets",
        "uuid",
        "builtins",
        "gc",
        "inspect",
        "resource",
        "platform",
        "sched",
        "select",
        "mmap",
        "concurrent",
        "faulthandler",
        "atexit",
        "code",
        "codeop",
        "pty",
        "fcntl",
        "zipfile",
        "tarfile",
        "sqlite3",
    }
)
FORBIDDEN_CALLS = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "__import__",
        "input",
        "breakpoint",
        "globals",
        "locals",
        "vars",
        "exit",
        "quit",
        "getattr",
        "setattr",
        "delattr",
        "memoryview",
        "help",
    }
)


class NotALiteral(ValueError):
    """Text that is not a Python literal (or one too long, or one whose repr does not read back)."""


def read_literal(text: str) -> Any:
    """The Python literal `text` spells (parsed, never evaluated); raises NotALiteral."""
    text = text.strip()
    if not text or len(text) > 20 * MAX_LITERAL_CHARS:
        raise NotALiteral("empty or too long")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise NotALiteral(f"not a literal: {type(exc).__name__}") from None
    return value


def literal_text(value: Any) -> str:
    """`repr(value)` when it reads back as an equal literal (so the sandbox can be given it as source)."""
    text = repr(value)
    try:
        back = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise NotALiteral(f"{type(value).__name__} value has no literal form") from None
    if not back == value:  # nan never equals itself: no stable answer
        raise NotALiteral("value does not read back equal")
    return text


def read_args(text: str) -> tuple[Any, ...]:
    """A call's argument list as written inside `f(...)` ("1, [2, 3]"), as a tuple of literals."""
    body = text.strip()
    call = re.fullmatch(r"[A-Za-z_]\w*\((.*)\)", body, flags=re.S)  # "f(1, 2)" written out in full
    body = (call.group(1) if call else body).rstrip().rstrip(",")
    if not body:
        return ()
    value = read_literal(f"({body},)")
    if not isinstance(value, tuple):
        raise NotALiteral("not an argument list")
    return value


def args_text(args: tuple[Any, ...]) -> str:
    """The argument list as literal source ("1, [2, 3]"); raises NotALiteral for a non-literal argument."""
    return ", ".join(literal_text(a) for a in args)


# -- programs ------------------------------------------------------------------------------------


def strip_docstrings(program: str) -> str:
    """The program without docstrings (they state what a function does and show examples, which
    would answer the task), normalised by `ast.unparse`; comments go too."""
    tree = ast.parse(program)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def safety_problem(program: str, entry_point: str) -> str | None:
    """Why `program` cannot be a task program (syntax, no entry point, a forbidden module or call), or None."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        return f"syntax_error: {type(exc).__name__}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if a.name.partition(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom):
            bad = (
                [node.module or "."] if (node.module or "").partition(".")[0] in FORBIDDEN_MODULES or node.level else []
            )
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            return f"forbidden_call: {node.func.id}"
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            return f"forbidden_attribute: {node.attr}"
        else:
            bad = []
        if bad:
            return f"forbidden_module: {bad[0]}"
    if not any(isinstance(n, ast.FunctionDef) and n.name == entry_point for n in tree.body):
        return f"no_entry_point: {entry_point}"
    return None


def probe_program(program: str, entry_point: str, cases: list[tuple[Any, ...]]) -> str:
    """`program` plus `rsynth_case(i)`: the entry point called on case i's literal arguments, built
    from their reprs (fresh objects on every call, so a program that mutates its input changes nothing)."""
    lines = [program.rstrip("\n"), "", "", f"def {CASE_FN}(i):"]
    for i, args in enumerate(cases):
        lines.append(f"    if i == {i}:")
        lines.append(f"        return {entry_point}({args_text(args)})")
    lines.append("    raise IndexError(i)")
    return "\n".join(lines) + "\n"


def answer_program(value: Any) -> str:
    """A deduction answer as a program: `rsynth_case(0)` returns the predicted literal."""
    return f"def {CASE_FN}(i):\n    return {literal_text(value)}\n"


def io_tests(outputs: list[str]) -> str:
    """The code verifier's io spec for `rsynth_case(0..n-1)` against the expected output reprs."""
    return json.dumps({"inputs": [[i] for i in range(len(outputs))], "outputs": outputs}, ensure_ascii=False)


# -- seeds: programs and inputs from benchmark rows, `generate code` output or proposals ----------


@dataclass
class Seed:
    """A program with its entry point and literal input argument tuples."""

    id: str
    program: str
    entry_point: str
    inputs: list[tuple[Any, ...]]
    message: str = ""
    source: str = "seed"
    skipped_inputs: int = 0  # inputs that were not literals (computed in tests) or were too long


def calls_in(tests: str, name: str) -> list[tuple[Any, ...]]:
    """Literal argument tuples of every `name(...)` call in test code (HumanEval's `candidate(...)`,
    MBPP asserts); calls with keyword or computed arguments are skipped. Parsed, never run."""
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    found: list[tuple[Any, ...]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == name
            and not node.keywords
        ):
            try:
                args = tuple(ast.literal_eval(a) for a in node.args)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if args not in found:
                found.append(args)
    return found


def usable_inputs(inputs: list[tuple[Any, ...]], limit: int) -> tuple[list[tuple[Any, ...]], int]:
    """Up to `limit` distinct inputs whose argument text is a short literal; and how many were dropped."""
    kept: list[tuple[Any, ...]] = []
    for args in inputs:
        try:
            text = args_text(args)
        except NotALiteral:
            continue
        if len(text) <= MAX_LITERAL_CHARS and args not in kept:
            kept.append(args)
        if len(kept) >= limit:
            break
    return kept, len(inputs) - len(kept)


def description(text: str) -> str:
    """A one-line message for induction from a task's prose (first line of a docstring or prompt that
    is not code, an assert or an example)."""
    for line in text.splitlines():
        s = line.strip().strip('"').strip("'").strip()
        if s and not re.match(r"^(def |assert |>>>|from |import |@|#|[\w.]+\(.*\)\s*(==|->|➞))", s) and len(s) > 8:
            return s[:300]
    return ""


def seed_from_row(row: dict[str, Any], default_id: str, max_inputs: int) -> Seed | str:
    """A seed from a HumanEval, MBPP+ or `generate code` row, or why the row holds none."""
    entry = row.get("entry_point")
    spec: dict[str, Any] = {}
    if isinstance(row.get("reference_answer"), str) and row.get("completion"):  # generate code output
        try:
            spec = json.loads(row["reference_answer"])
        except ValueError:
            return "reference_answer is not a JSON test spec"
        entry = entry or spec.get("entry_point")
    prompt = row.get("prompt") or row.get("problem") or ""
    program = row.get("completion") or row.get("program") or ""
    if not program and row.get("canonical_solution"):
        sol = row["canonical_solution"]
        program = sol if entry and re.search(rf"^\s*def\s+{re.escape(entry)}\b", sol, flags=re.M) else prompt + sol
    if not program:
        return "no program (canonical_solution, completion or program)"
    if not entry:
        m = re.search(r"^def\s+(\w+)\s*\(", program, flags=re.M)
        if not m:
            return "no entry_point and no top-level function"
        entry = m.group(1)
    raw: list[tuple[Any, ...]] = []
    if row.get("inputs") is not None:  # a plain row: inputs as argument-list strings or JSON lists
        for item in row["inputs"] if isinstance(row["inputs"], list) else []:
            try:
                raw.append(read_args(item) if isinstance(item, str) else tuple(item))
            except NotALiteral:
                continue
    for col in ("base_input", "plus_input"):  # MBPP+ (JSON lists of argument lists)
        value = row.get(col)
        value = json.loads(value) if isinstance(value, str) and value.strip().startswith("[") else value
        raw += [tuple(a) for a in value or [] if isinstance(a, list)]
    tests = spec.get("tests") if spec else row.get("test")
    if spec and spec.get("style") in ("io", "evalplus"):
        try:
            raw += [tuple(a) for a in json.loads(spec["tests"]).get("inputs", []) if isinstance(a, list)]
        except (ValueError, AttributeError, TypeError):
            pass
    elif isinstance(tests, str):
        raw += calls_in(tests, "candidate" if "def check" in tests else entry)
    if isinstance(row.get("assertion"), str) and not raw:
        raw += calls_in(row["assertion"], entry)
    inputs, dropped = usable_inputs(raw, max_inputs)
    if not inputs:
        return "no literal inputs for the program"
    try:
        program = strip_docstrings(program)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return "program does not parse"
    return Seed(
        str(row.get("task_id") or row.get("id") or default_id),
        program,
        entry,
        inputs,
        description(prompt),
        "seed",
        dropped,
    )


# -- proposals (Absolute Zero's proposer, conditioned on K reference tasks) -----------------------

PROPOSE_TEMPLATE = (
    "You design code reasoning puzzles. Here are {k} reference programs with example inputs:\n\n{references}\n\n"
    "Write ONE new, different Python function named `f` that is deterministic, uses no randomness, time, files "
    "or network, and returns a plain value (number, string, list, tuple, dict, bool). Then give {n_inputs} different "
    "inputs for it, one per line, each as the argument list of a call, and a one-sentence message hinting at what "
    "f does.\n\nAnswer in exactly this layout:\n```python\ndef f(...):\n    ...\n```\n```input\n<args of call 1>\n"
    "<args of call 2>\n```\nMessage: <one sentence>"
)
_FENCE = re.compile(r"```(\w*)[ \t]*\n(.*?)(?:```|\Z)", re.S)


def reference_block(seed: Seed) -> str:
    calls = "\n".join(f"f({args_text(a)})" for a in seed.inputs[:3])
    return f"```python\n{rename(seed.program, seed.entry_point, 'f')}\n```\nInputs:\n{calls}"


def rename(program: str, old: str, new: str) -> str:
    """The program with function `old` called `new` (word boundaries; for prompts only)."""
    return re.sub(rf"\b{re.escape(old)}\b", new, program) if old != new else program


def propose_prompt(references: list[Seed], n_inputs: int) -> str:
    blocks = "\n\n".join(f"Reference {i + 1}:\n{reference_block(s)}" for i, s in enumerate(references))
    return PROPOSE_TEMPLATE.format(k=len(references), references=blocks, n_inputs=n_inputs)


def parse_proposal(text: str, seed_id: str, max_inputs: int) -> Seed | str:
    """A proposed program (function `f`), its inputs and message, or why the reply holds none."""
    blocks = _FENCE.findall(text)
    code = next((b for lang, b in blocks if lang.lower() in ("python", "py", "")), None)
    if code is None:
        return "no_program_block"
    input_block = next((b for lang, b in blocks if lang.lower() in ("input", "inputs")), "")
    raw = []
    for line in input_block.splitlines():
        if line.strip():
            try:
                raw.append(read_args(line))
            except NotALiteral:
                continue
    inputs, dropped = usable_inputs(raw, max_inputs)
    if not inputs:
        return "no_literal_inputs"
    m = re.search(r"Message:\s*(.+)", text)
    return Seed(seed_id, code.strip("\n"), "f", inputs, (m.group(1).strip() if m else "")[:300], "proposed", dropped)


# -- tasks ------------------------------------------------------------------------------------------

DEDUCTION_TEMPLATE = (
    "Given the Python program and its input, predict the exact value the call returns.\n\n```python\n{program}\n```\n\n"
    "Call: `{call}`\n\nThink step by step, then give the returned value as a Python literal inside <answer></answer>."
)
ABDUCTION_TEMPLATE = (
    "Given the Python program and a value it returned, find an input that makes it return exactly that value.\n\n"
    "```python\n{program}\n```\n\nReturned value: `{output}`\n\nThink step by step, then give the arguments of the call "
    "(as you would write them inside `{entry}(...)`) inside <answer></answer>."
)
INDUCTION_TEMPLATE = (
    "Write a Python function `{entry}` that matches these input/output examples.\n\nHint: {message}\n\n{pairs}\n\n"
    "Reply with the complete function in one ```python block."
)


@dataclass
class Task:
    """One verifiable task; `tests` + `entry_point` check a candidate program built by `candidate`."""

    type: str
    prompt: str
    answer: str  # the gold answer: an output literal, an argument list, or a program
    tests: str  # io spec for rsynth_case(i)
    visible: list[tuple[str, str]] = field(default_factory=list)  # induction: (args, output) shown
    held_out: list[tuple[str, str]] = field(default_factory=list)  # induction: (args, output) to pass


def make_tasks(seed: Seed, outputs: list[str], types: tuple[str, ...], pick: int) -> list[Task]:
    """The tasks of one valid seed (outputs recorded in the sandbox, one per input); `pick` chooses
    which input deduction and abduction use (the run's seed, so a re-run makes the same tasks)."""
    i = pick % len(seed.inputs)
    call = f"{seed.entry_point}({args_text(seed.inputs[i])})"
    tasks = []
    if "deduction" in types:
        tasks.append(
            Task(
                "deduction",
                DEDUCTION_TEMPLATE.format(program=seed.program, call=call),
                outputs[i],
                io_tests([outputs[i]]),
            )
        )
    if "abduction" in types:
        tasks.append(
            Task(
                "abduction",
                ABDUCTION_TEMPLATE.format(program=seed.program, output=outputs[i], entry=seed.entry_point),
                args_text(seed.inputs[i]),
                io_tests([outputs[i]]),
            )
        )
    if "induction" in types and len(seed.inputs) >= 2:
        pairs = [(args_text(a), o) for a, o in zip(seed.inputs, outputs)]
        shown = max(1, len(pairs) // 2)
        visible, held = pairs[:shown], pairs[shown:]
        lines = "\n".join(f"{seed.entry_point}({a}) == {o}" for a, o in visible)
        prompt = INDUCTION_TEMPLATE.format(entry=seed.entry_point, message=seed.message or "(none)", pairs=lines)
        tasks.append(Task("induction", prompt, seed.program, io_tests([o for _, o in held]), visible, held))
    return tasks


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)


def answer_text(task_type: str, reply: str) -> str:
    """What a solver's reply answers: the last <answer> (else the last line) or, for induction, its code."""
    if task_type == "induction":
        blocks = [b for _, b in _FENCE.findall(reply)]
        return (blocks[-1] if blocks else reply).strip("\n")
    found = _ANSWER.findall(reply)
    text = found[-1] if found else (reply.strip().splitlines() or [""])[-1]
    return text.strip().strip("`").strip()


def candidate(task_type: str, answer: str, program: str, entry_point: str, held_out_args: list[str]) -> str | None:
    """The program the verifier runs for a solver's answer, or None when the answer cannot be one
    (not a literal, not an argument list). The answer enters only as the repr of a parsed literal,
    except for induction, where the solver's program is the candidate (run in the sandbox)."""
    try:
        if task_type == "deduction":
            return answer_program(read_literal(answer))
        if task_type == "abduction":
            return probe_program(program, entry_point, [read_args(answer)])
        if not answer.strip():
            return None
        return probe_program(answer, entry_point, [read_args(a) for a in held_out_args])
    except NotALiteral:
        return None
