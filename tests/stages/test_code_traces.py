"""Code traces are what the model wrote (issue 22), on HumanEval/0-9 in the real sandbox.

Prompt lines (imports, signature, docstring) are context, not labelled steps; the prompt's imports are
merged into a full-function completion, never duplicated; mutants change executable lines only."""

from __future__ import annotations

import ast
import gzip
import json
from collections import Counter

import pytest

from rsynth.data.shards import iter_split_rows
from rsynth.stages.codegen import CodeConfig, TestSpec, assemble, run_code
from rsynth.synth.mutations import executable_lines, line_mutants
from rsynth.verifiers.code import CodeVerifier
from tests.formal_helpers import ScriptedEngine
from tests.paths import BENCHMARKS


def humaneval(n: int) -> list[dict]:
    with gzip.open(BENCHMARKS / "humaneval.jsonl.gz", "rt") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def docstring_lines(program: str) -> set[int]:
    """0-based lines inside any docstring of `program` (read independently of mutations.py)."""
    out = set()
    for node in ast.walk(ast.parse(program)):
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module))
            and ast.get_docstring(node) is not None
        ):
            doc = node.body[0]
            out.update(range(doc.lineno - 1, doc.end_lineno))
    return out


def test_full_function_completions_keep_one_copy_of_each_import():
    with_imports = 0
    for row in humaneval(10):
        program = assemble(
            row["prompt"], f"```python\n{row['prompt']}{row['canonical_solution']}```", row["entry_point"]
        )
        imports = [ln for ln in program.split("\n") if ln.startswith(("import ", "from "))]
        with_imports += bool(imports)
        assert not [ln for ln, c in Counter(imports).items() if c > 1], row["task_id"]
    assert with_imports >= 5  # HumanEval/0 starts with `from typing import List` (twice before the merge)


def test_mutants_of_humaneval_never_touch_a_docstring():
    touched = total = 0
    for row in humaneval(10):
        program = "\n".join(ln for ln in (row["prompt"] + row["canonical_solution"]).split("\n") if ln.strip())
        docs = docstring_lines(program)
        assert docs  # every HumanEval prompt has a docstring with examples (text that mutates easily)
        for m in line_mutants(program):
            total += 1
            touched += m.line in docs
            assert m.line in executable_lines(program)
    assert total >= 10 and touched == 0


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """generate code on HumanEval/0-9: per task one body-only completion and one that repeats the
    whole prompt (imports, signature, docstring) before the body, as chat models often do."""
    rows = humaneval(10)
    tmp = tmp_path_factory.mktemp("code-traces")
    inp = tmp / "he.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def script(prompt):
        row = next(r for r in rows if r["prompt"] in prompt.messages[-1][1])
        return [
            f"```python\n{row['canonical_solution']}```",
            f"```python\n{row['prompt']}{row['canonical_solution']}```",
        ]

    with CodeVerifier(timeout=10.0, workers=2) as verifier:
        run_code(
            str(inp),
            {},
            tmp / "out",
            ScriptedEngine(script),
            verifier,
            CodeConfig(n_samples=2, mutation_labels=3),
            quiet=True,
        )
    return rows, tmp / "out"


def test_trace_steps_are_the_model_lines_and_prompt_lines_are_context(generated):
    rows, out = generated
    by_task = {r["task_id"]: r for r in rows}
    data = list(iter_split_rows(out))
    assert len(data) == 20 and all(t["verdict"] == "pass" for t in data)  # the prompt still runs as context
    for t in data:
        row = by_task[t["problem_id"]]
        prompt_lines = {ln.rstrip() for ln in row["prompt"].split("\n") if ln.strip()}
        if t["sample_index"] == 0:  # body only: not one step comes from the prompt
            assert not prompt_lines & set(t["steps"]), t["id"]
            assert t["steps"] == [ln.rstrip() for ln in row["canonical_solution"].split("\n") if ln.strip()]
        else:  # the model repeated the prompt: its lines are its own, but each import appears once
            imports = [s for s in t["steps"] if s.startswith(("import ", "from "))]
            assert len(imports) == len(set(imports))
        assert t["completion"] == "\n".join(t["steps"]) and len(t["step_hard"]) == len(t["steps"])
        assert TestSpec.from_json(t["reference_answer"]).context == row["prompt"]


def test_mutant_rows_change_one_executable_model_line(generated):
    rows, out = generated
    data = {t["id"]: t for t in iter_split_rows(out)}
    mutants = list(iter_split_rows(out, "mutants"))
    assert len(mutants) >= 20
    for m in mutants:
        original = data[m["id"].rsplit("/", 1)[0]]["steps"]
        changed = [i for i, (a, b) in enumerate(zip(original, m["steps"])) if a != b]
        assert len(changed) == 1 and len(original) == len(m["steps"])
        assert changed[0] in executable_lines("\n".join(original))
        if m["sample_index"] == 1:
            assert changed[0] not in docstring_lines("\n".join(original))
        assert m["first_error"] in (-1, changed[0])
