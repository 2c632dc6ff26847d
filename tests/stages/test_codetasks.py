"""`generate code-tasks`: Absolute Zero tasks from real benchmark programs and from a proposer served
over HTTP, every program and answer run in the real sandbox."""

from __future__ import annotations

import gzip
import json
from itertools import islice

import pytest

from rsynth.data.shards import iter_split_rows
from rsynth.synth.codetasks import candidate, read_args, safety_problem, seed_from_row
from tests.build_support import rsynth
from tests.paths import BENCHMARKS


def _seed_rows(path):
    rows = [json.loads(line) for line in islice(gzip.open(BENCHMARKS / "humaneval.jsonl.gz", "rt"), 2)]
    rows += [json.loads(line) for line in islice(open(BENCHMARKS / "mbppplus.jsonl"), 2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    return path


def test_answers_enter_the_sandbox_only_as_parsed_literals():
    assert read_args("[1, 2], 'a'") == ([1, 2], "a") and read_args("f(3, (4,))") == (3, (4,)) and read_args("") == ()
    # an abduction answer that tries to redefine the checked function is not an argument list
    assert (
        candidate("abduction", "0) or True\ndef rsynth_case(i): return 1#", "def f(x):\n    return x", "f", []) is None
    )
    assert candidate("deduction", "__import__('os').system('id')", "", "f", []) is None
    assert safety_problem("import os\ndef f():\n    return 1", "f") == "forbidden_module: os"
    assert safety_problem("def f(x):\n    return open(x)", "f") == "forbidden_call: open"
    assert safety_problem("def g():\n    return 1", "f") == "no_entry_point: f"
    he = json.loads(next(iter(gzip.open(BENCHMARKS / "humaneval.jsonl.gz", "rt"))))
    seed = seed_from_row(he, "x", 4)
    assert len(seed.inputs) == 4 and '"""' not in seed.program  # docstrings (examples) stripped


def test_seed_tasks_from_benchmarks_are_checked_by_verify_code(tmp_path):
    src = _seed_rows(tmp_path / "seeds.jsonl")
    out = tmp_path / "tasks"
    res = rsynth(
        "generate", "code-tasks", "-i", str(src), "-o", str(out), "--max-inputs", "4", "--verify-timeout", "5", "-q"
    )
    assert res.returncode == 0, res.stderr
    tasks = list(iter_split_rows(out, "data"))
    assert sorted({t["task_type"] for t in tasks}) == ["abduction", "deduction", "induction"] and len(tasks) == 12
    assert len(list(iter_split_rows(out, "errors"))) == 1  # the line that is not JSON
    # each gold answer, and a wrong one, as the rows `verify code --style io` reads
    rows = []
    for t in tasks:
        held = t["held_out_inputs"] or []
        gold = candidate(t["task_type"], t["answer"], t["program"], t["function"], held)
        wrong = {
            "deduction": "'no such output'",
            "abduction": "None, None, None",
            "induction": f"def {t['function']}(*a):\n    return 'nope'",
        }[t["task_type"]]
        rows += [
            {"id": t["id"] + "/gold", "code": gold, "tests": t["tests"], "entry_point": t["entry_point"]},
            {
                "id": t["id"] + "/wrong",
                "code": candidate(t["task_type"], wrong, t["program"], t["function"], held),
                "tests": t["tests"],
                "entry_point": t["entry_point"],
            },
        ]
    (tmp_path / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = rsynth(
        "verify",
        "code",
        "-i",
        str(tmp_path / "answers.jsonl"),
        "-o",
        str(tmp_path / "verdicts"),
        "--style",
        "io",
        "--workers",
        "2",
    )
    assert res.returncode == 0, res.stderr
    verdicts = {r["id"]: r["ok"] for r in iter_split_rows(tmp_path / "verdicts", "data")}
    assert all(ok for k, ok in verdicts.items() if k.endswith("/gold")) and len(verdicts) == 24
    assert not any(ok for k, ok in verdicts.items() if k.endswith("/wrong"))


@pytest.mark.slow
def test_proposed_tasks_over_http_are_validated_and_solve_rates_kept(tmp_path):
    from tests.codetask_support import ScriptedCoder
    from tests.openai_server import serve

    server = serve(ScriptedCoder(), model_name="coder")
    try:
        src = _seed_rows(tmp_path / "seeds.jsonl")
        out = tmp_path / "proposed"
        args = [
            "generate",
            "code-tasks",
            "-i",
            str(src),
            "-o",
            str(out),
            "--programs",
            "propose",
            "--proposals",
            "1",
            "--engine",
            "openai",
            "--base-url",
            server.base_url,
            "--model",
            "coder",
            "--solver-model",
            "same",
            "--solver-attempts",
            "2",
            "--keep-solve-rate",
            "0.1:0.9",
            "--verify-timeout",
            "5",
            "-q",
        ]
        res = rsynth(*args)
        assert res.returncode == 0, res.stderr
    finally:
        server.stop()
    rejected = {r["reason"] for r in iter_split_rows(out, "rejected")}
    assert {"forbidden_module", "nondeterministic", "no_program_block"} <= rejected, rejected
    tasks = list(iter_split_rows(out, "data"))
    assert {t["task_type"] for t in tasks} == {"deduction", "abduction", "induction"}
    assert all(t["solve_rate"] == 0.5 and t["source"] == "proposed" for t in tasks)
    attempts = list(iter_split_rows(out, "attempts"))
    assert len(attempts) == 2 * len(tasks) and sum(a["ok"] for a in attempts) == len(tasks)
    sneaky = [a for a in attempts if a["task_type"] == "abduction" and not a["ok"]]
    assert sneaky and all(a["verdict"] == "unparseable" and a["code"] is None for a in sneaky)


@pytest.mark.parametrize(
    ("path", "kind", "cls"),
    [
        (("generate", "code-tasks"), "code-tasks", "rsynth.stages.codetasks_params:CodeTasksParams"),
        (("generate", "injected-errors"), "inject-errors", "rsynth.stages.inject:InjectParams"),
        (("filter-critiques",), "filter-critiques", "rsynth.stages.critiques:CritiqueFilterConfig"),
    ],
)
def test_every_new_param_is_a_cli_option_and_a_recipe_key(path, kind, cls):
    import importlib

    import typer

    from rsynth.cli import app
    from rsynth.config import params_of, recipe_key
    from rsynth.recipes.adapters import STAGES

    module, name = cls.split(":")
    cmd = typer.main.get_command(app)
    for part in path:
        cmd = cmd.commands[part]
    flags = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for f, meta, _ in params_of(getattr(importlib.import_module(module), name)):
        assert meta["flag"].split("/")[0] in flags and recipe_key(meta) in STAGES[kind].fields, f.name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--types", "deduction,guessing"], "--types 'deduction,guessing'"),
        (["--keep-solve-rate", "0.1:0.9"], "--keep-solve-rate needs --solver-model"),
        (["--keep-solve-rate", "0.9:0.1", "--solver-model", "same"], "--keep-solve-rate '0.9:0.1'"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    src = tmp_path / "in.jsonl"
    src.write_text('{"program": "def f(x):\\n    return x", "inputs": ["1"]}\n')
    res = rsynth("generate", "code-tasks", "-i", str(src), "-o", str(tmp_path / "o"), *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
