"""generate code and annotate-prm on code, in the real bubblewrap sandbox (or its fallback).

Scripted engines supply programs whose verdicts are known (a tiny random model never writes
working Python); the CLI also runs once for real with a tiny random model."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsynth.annotators import OmegaPRMConfig
from rsynth.data.shards import iter_split_rows
from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate
from rsynth.stages.codegen import CodeConfig, TestSpec, assemble, run_code
from rsynth.synth.mutations import line_mutants, mutate_line
from rsynth.verifiers.code import CodeVerifier
from tests.formal_helpers import ScriptedEngine
from tests.paths import BENCHMARKS as BENCH
from tests.paths import REPO as ROOT


@pytest.fixture(scope="module")
def verifier():
    with CodeVerifier(timeout=10.0, workers=2) as v:
        yield v


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def benchmark_rows() -> list[dict]:
    with gzip.open(BENCH / "humaneval.jsonl.gz", "rt") as fh:
        he = [json.loads(next(fh)) for _ in range(2)]
    mbpp = json.loads((BENCH / "mbppplus.jsonl").read_text().splitlines()[0])
    return [*he, mbpp]


def code_script(rows: list[dict]):
    """HumanEval: the canonical body (pass) and a body that returns None (fail); MBPP+: the
    canonical solution; test synthesis: two right asserts and one wrong one."""

    def script(prompt) -> list[str]:
        user = prompt.messages[-1][1]
        if "assert statements" in user:
            return ["```python\nassert max2(1, 2) == 2\nassert max2(3, 1) == 1\nassert max2(5, 5) == 5\n```"]
        if "Write max2" in user:
            return ["```python\ndef max2(a, b):\n    if a > b:\n        return a\n    return b\n```"]
        if "Nothing passes" in user:
            return ["x"]
        row = next(r for r in rows if r["prompt"] in user)
        if row["task_id"].startswith("HumanEval"):
            return [f"```python\n{row['canonical_solution']}```", "```python\n    return None\n```"]
        return [f"```python\n{row['canonical_solution']}\n```"]

    return script


def test_generate_code_verdicts_pass_rates_tests_and_mutants(tmp_path, verifier):
    bench = benchmark_rows()
    tasks = [
        *bench,
        {
            "task_id": "own/max2",
            "prompt": "Write max2(a, b), the larger of two numbers.",
            "entry_point": "max2",
            "canonical_solution": "def max2(a, b):\n    return a if a > b else b\n",
        },
        {
            "task_id": "own/none",
            "prompt": "Nothing passes: write f.",
            "entry_point": "f",
            "canonical_solution": "def f():\n    return 1\n",
        },
        {"task_id": "own/no-tests", "prompt": "No tests, no reference."},
        {"task_id": "own/bad-spec", "prompt": "p", "reference_answer": "not json"},
    ]
    inp = write_jsonl(tmp_path / "tasks.jsonl", tasks)
    config = CodeConfig(n_samples=2, synthesize_tests=True, mutation_labels=3)
    engine = ScriptedEngine(code_script(bench))

    def script_none(prompt):  # "own/none": the model's tests all fail the reference
        user = prompt.messages[-1][1]
        return (
            ["```python\nassert f() == 2\n```"]
            if "Nothing passes" in user and "assert statements" in user
            else engine.script(prompt)
        )

    stats = run_code(str(inp), {}, tmp_path / "out", ScriptedEngine(script_none), verifier, config, quiet=True)
    data = {r["id"]: r for r in iter_split_rows(tmp_path / "out", "data")}
    he0 = bench[0]["task_id"]
    assert data[f"{he0}/s0/0"]["verdict"] == "pass" and data[f"{he0}/s0/1"]["verdict"] == "fail"
    assert data[f"{he0}/s0/0"]["pass_rate"] == 0.5 and data[f"{he0}/s0/0"]["domain"] == "code"
    assert data["Mbpp/2/s0/0"]["verdict"] == "pass" and data["Mbpp/2/s0/0"]["pass_rate"] == 1.0
    mbpp_spec = TestSpec.from_json(data["Mbpp/2/s0/0"]["reference_answer"])  # MBPP+: base + plus inputs, evalplus style
    assert mbpp_spec.style == "evalplus" and len(json.loads(mbpp_spec.tests)["inputs"]) == len(
        bench[2]["base_input"]
    ) + len(bench[2]["plus_input"])
    assert data["Mbpp/2/s0/0"]["provenance"]["verifier_version"] == f"3+sandbox-{verifier.sandbox.backend}"
    spec = TestSpec.from_json(data[f"{he0}/s0/0"]["reference_answer"])
    assert spec.entry_point == bench[0]["entry_point"] and "def check" in spec.tests
    # test synthesis: the wrong assert (max2(3, 1) == 1) is dropped, the task's samples run on the kept ones
    (task,) = iter_split_rows(tmp_path / "out", "tasks")
    assert TestSpec.from_json(task["reference_answer"]).tests == "assert max2(1, 2) == 2\nassert max2(5, 5) == 5"
    assert json.loads(task["metadata"])["dropped"] == ["assert max2(3, 1) == 1"]
    assert data["own/max2/s0/0"]["verdict"] == "pass"
    (rejected,) = iter_split_rows(tmp_path / "out", "rejected")
    assert rejected["id"] == "own/none" and rejected["reason"] == "no_test_passes_reference"
    errors = sorted(e["reason"] for e in iter_split_rows(tmp_path / "out", "errors"))
    assert errors == [
        "reference_answer is not a JSON test spec",
        "task has no tests and no reference solution to check written tests",
    ]
    # mutants: the `>` -> `>=` mutant of max2 is equivalent (all lines good); HumanEval mutants break
    mutants = list(iter_split_rows(tmp_path / "out", "mutants"))
    by_id = {m["id"]: m for m in mutants}
    eq = by_id["own/max2/s0/0/m1"]
    assert "a >= b" in eq["completion"] and eq["verdict"] == "pass" and eq["first_error"] == -1 and all(eq["step_hard"])
    broken = [m for m in mutants if m["verdict"] != "pass"]
    assert broken and all(
        m["step_hard"][m["first_error"]] is False and all(m["step_hard"][: m["first_error"]]) for m in broken
    )
    assert stats["input rows"] == len(tasks)


def test_mutations_touch_one_line_and_never_strings_or_comments():
    program = 'def f(xs):\n    total = 0  # start < here\n    for x in xs:\n        if x > 0 and x != 3:\n            total += x * 2\n    return "a+b" + str(total)'
    mutants = line_mutants(program)
    lines = program.split("\n")
    for m in mutants:
        changed = [i for i, (a, b) in enumerate(zip(lines, m.program.split("\n"))) if a != b]
        assert changed == [m.line]
    assert mutate_line("    total = 0  # start < here") == ("    total = 1  # start < here", "constant + 1")
    assert mutate_line('    return "a+b" + str(total)') == ('    return "a+b" - str(total)', "+ to -")
    assert mutate_line("    if x > 0 and x != 3:")[0] == "    if x >= 0 and x != 3:"
    assert mutate_line("def f(xs):") is None and mutate_line("    pass") is None
    assert mutate_line("    while ready:") == ("    while not (ready):", "negate condition")


def test_assemble_body_only_and_full_programs():
    prompt = 'from typing import List\n\ndef f(xs: List[int]) -> int:\n    """Sum."""\n'
    assert assemble(prompt, "```python\n    return sum(xs)\n```", "f").endswith('"""Sum."""\n    return sum(xs)')
    full = assemble(prompt, "```python\ndef f(xs):\n    return sum(xs)\n```", "f")
    assert full == "from typing import List\ndef f(xs):\n    return sum(xs)"


def code_trace_rows() -> list[dict]:
    spec = TestSpec("assert add(2, 3) == 5\nassert add(0, 0) == 0", "assert", "add").to_json()
    return [
        {
            "id": "add-wrong",
            "problem": "Write add(a, b).",
            "reference_answer": spec,
            "domain": "code",
            "steps": ["def add(a, b):", "    s = a - b", "    return s"],
        },
        {"id": "bad-spec", "problem": "p", "reference_answer": "{}", "domain": "code", "steps": ["x = 1"]},
    ]


def add_script(prompt) -> list[str]:
    """Continuations after the wrong line keep it wrong; from the clean prefix they are right."""
    if "a - b" in prompt.assistant_prefix:
        return ["    return s\n```"]
    if "def add" in prompt.assistant_prefix:
        return ["    s = a + b\n    return s\n```"]
    return ["def add(a, b):\n    return a + b\n```", "def add(a, b):\n    return a * b\n```"]


def test_annotate_prm_on_code_finds_the_first_wrong_line(tmp_path, verifier):
    inp = write_jsonl(tmp_path / "traces.jsonl", code_trace_rows())
    config = AnnotateConfig(method="omegaprm", omegaprm=OmegaPRMConfig(k0=2, k=2, max_search=0), domain="code")
    run_annotate(str(inp), {}, tmp_path / "out", ScriptedEngine(add_script), config, quiet=True, verifier=verifier)
    (trace,) = [r for r in iter_split_rows(tmp_path / "out", "data") if r["id"] == "add-wrong"]
    assert trace["domain"] == "code" and trace["verdict"] == "fail"
    assert trace["first_error"] == 1 and trace["step_hard"] == [True, False, False]
    assert trace["completion"] == "def add(a, b):\n    s = a - b\n    return s"
    (error,) = iter_split_rows(tmp_path / "out", "errors")
    assert "JSON test spec" in error["reason"]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rsynth", *args], capture_output=True, text=True, timeout=600, env=env)


def test_cli_code_and_annotate_with_a_real_tiny_model(tmp_path, tiny_model_dir):
    tasks = write_jsonl(tmp_path / "tasks.jsonl", benchmark_rows()[:2])
    res = cli(
        "generate",
        "code",
        "--input",
        str(tasks),
        "--out",
        str(tmp_path / "code"),
        "--model",
        tiny_model_dir,
        "--engine",
        "hf",
        "--n-samples",
        "2",
        "--max-new-tokens",
        "12",
        "--mutation-labels",
        "2",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    data = list(iter_split_rows(tmp_path / "code", "data"))
    assert len(data) == 4 and all(r["verdict"] in ("error", "fail") and r["pass_rate"] == 0.0 for r in data)
    assert data[0]["provenance"]["engine"] == "hf" and data[0]["provenance"]["verifier"] == "code"
    traces = write_jsonl(tmp_path / "traces.jsonl", code_trace_rows()[:1])
    res = cli(
        "annotate-prm",
        "--input",
        str(traces),
        "--out",
        str(tmp_path / "labels"),
        "--model",
        tiny_model_dir,
        "--engine",
        "hf",
        "--k",
        "2",
        "--max-new-tokens",
        "8",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    (trace,) = iter_split_rows(tmp_path / "labels", "data")
    assert trace["domain"] == "code" and trace["verdict"] == "fail" and trace["label_method"].startswith("omegaprm")


def test_cli_user_mistakes_are_one_line(tmp_path):
    tasks = write_jsonl(tmp_path / "tasks.jsonl", benchmark_rows()[:1])
    res = cli("generate", "code", "--input", str(tasks), "--out", str(tmp_path / "o"), "--style", "bogus")
    assert res.returncode == 2 and "--style 'bogus'" in res.stderr and "Traceback" not in res.stderr
    res = cli("annotate-prm", "--input", str(tasks), "--out", str(tmp_path / "o2"), "--domain", "chess")
    assert res.returncode == 2 and "--domain 'chess'" in res.stderr
