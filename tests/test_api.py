"""The Python API: typed functions over the recipe stages (so the one stage runner), on a
`datasets.Dataset` or a path, with an engine object or a model name; typed errors; no CLI; a plain
script needs no `__main__` guard."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing

import pytest

import rsynth
from rsynth.annotators import OmegaPRMConfig
from rsynth.data.readers import count_records, read_records
from rsynth.data.shards import main_split
from rsynth.errors import UserError
from rsynth.stages.judge import JudgeConfig
from tests.build_support import REPO, planted_traces
from tests.judge_support import ScriptedJudge, planted_plan

PROBLEMS = [
    {"problem": "What is 2 + 3?", "answer": "5"},
    {"problem": "What is 1 + 1?", "answer": "2"},
    {
        "problem": "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends "
        "every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in "
        "dollars does she make every day at the farmers' market?",
        "answer": "18",
    },
]


def test_import_rsynth_stays_light():
    code = "import sys, rsynth; print(sorted(m for m in ('typer', 'datasets', 'torch', 'rich') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert res.stdout.strip() == "[]"


def test_decontaminate_a_dataset():
    import datasets

    result = rsynth.decontaminate(datasets.Dataset.from_list(PROBLEMS), against="gsm8k")
    assert isinstance(result, datasets.DatasetDict)
    assert len(result["kept"]) == 2 and len(result["removed"]) == 1  # the GSM8K test item goes


def test_generate_then_annotate(tiny_model_dir, tmp_path):
    import datasets

    solutions = rsynth.generate_solutions(
        datasets.Dataset.from_list(PROBLEMS[:2]),
        out=tmp_path / "sol",
        model=tiny_model_dir,
        engine="hf",
        n_samples=2,
        max_new_tokens=8,
        batch_rows=2,
    )
    assert len(solutions["data"]) == 4 and (tmp_path / "sol" / "manifest.json").exists()
    labels = rsynth.annotate_prm(
        str(tmp_path / "sol"),
        model=tiny_model_dir,
        engine="hf",
        input_kind="traces",
        k0=2,
        k=2,
        max_new_tokens=8,
        batch_rows=2,
    )
    assert set(labels) == {"data", "tree", "questions", "errors"} and len(labels["questions"]) == 4
    assert all(r["step_hard"] is not None for r in labels["data"])


def test_mistakes_raise():
    with pytest.raises(TypeError, match="unexpected keyword.*'bogus'.*expected one of:.*k0"):
        rsynth.annotate_prm("x.jsonl", bogus=1)
    with pytest.raises(UserError, match="k0, k, L and chunks must be >= 1"):
        rsynth.annotate_prm("x.jsonl", omegaprm=OmegaPRMConfig(), k0=0)
    with pytest.raises(TypeError, match="unexpected keyword.*'nope'"):
        rsynth.decontaminate("x.jsonl", nope=1)
    with pytest.raises(UserError, match="--method"):
        rsynth.annotate_prm(str(REPO / "README.md"), method="nope")
    with pytest.raises(TypeError, match="datasets.Dataset, a path"):
        rsynth.decontaminate(42)


def _hints(fn) -> dict:
    """The function's annotations resolved, with the types the API imports for type checkers only."""
    import textwrap

    namespace = dict(vars(rsynth.api))
    block = inspect.getsource(rsynth.api).split("if TYPE_CHECKING:", 1)[1].split("\n__all__", 1)[0]
    exec(textwrap.dedent(block.split("\n", 1)[1]), namespace)  # our own import lines, nothing else
    return typing.get_type_hints(fn, namespace)


API = [
    "generate_problems",
    "generate_solutions",
    "generate_code",
    "generate_formal",
    "generate_proofs",
    "annotate_prm",
    "judge",
    "consensus",
    "decontaminate",
    "verify",
    "export",
    "build",
]


@pytest.mark.parametrize("name", API)
def test_every_command_that_makes_data_has_a_typed_function(name):
    fn = getattr(rsynth, name)
    hints = _hints(fn)
    assert "DatasetDict" in str(hints["return"]) and fn.__doc__
    sig = inspect.signature(fn)
    if "engine" in sig.parameters:
        assert "Engine" in str(hints["engine"]) and "str" in str(hints["engine"])
    assert all(p.kind is not p.VAR_POSITIONAL for p in sig.parameters.values())


def test_annotate_signature_shows_its_option_groups():
    hints = _hints(rsynth.annotate_prm)
    assert {"params", "omegaprm", "math_shepherd", "lean", "sampling", "fields", "limit"} <= set(hints)
    assert "OmegaPRMConfig" in str(hints["omegaprm"])


def test_judge_with_an_engine_object_then_consensus(tmp_path):
    """An engine built by the caller is used as is (behind the output's completion cache)."""
    traces = planted_traces(tmp_path / "traces.jsonl", n=3)
    rows = [json.loads(line) for line in traces.read_text().splitlines()]
    traces.write_text("".join(json.dumps({**r, "first_error": len(r["steps"]) - 1}) + "\n" for r in rows))
    engine = ScriptedJudge(planted_plan)
    judged = rsynth.judge(
        str(traces),
        out=tmp_path / "judged",
        engine=engine,
        params=JudgeConfig(n_judgements=3),
        sampling=None,
        temperature=0.7,
    )
    assert set(judged) == {"data", "unparsed", "errors"} and len(judged["data"]) == 3
    assert engine.stats.prompts == 3 and (tmp_path / "judged" / "cache.sqlite").exists()
    kept = rsynth.consensus(str(tmp_path / "judged"), out=tmp_path / "consensus", tolerance=0)
    assert list(kept)[0] == "data" and len(kept["data"]) + len(kept["filtered"]) == 3


def test_the_judge_stage_keeps_its_greedy_defaults(tmp_path):
    with pytest.raises(UserError, match="temperature 0 samples the same greedy judgement"):
        rsynth.judge(
            str(planted_traces(tmp_path / "t.jsonl", n=1)),
            out=tmp_path / "o",
            engine=ScriptedJudge(planted_plan),
            n_judgements=3,
        )


def test_a_decontaminate_output_is_read_by_its_main_split(tmp_path):
    """The manifest names the main split (kept/ here); readers and the next command use it."""
    import datasets

    out = tmp_path / "clean"
    rsynth.decontaminate(datasets.Dataset.from_list(PROBLEMS), out=out, against="gsm8k")
    manifest = json.loads((out / "manifest.json").read_text())
    assert main_split(manifest) == "kept"
    assert count_records(str(out)) == 2 and sum(1 for _ in read_records(str(out))) == 2
    assert main_split({"stage": "decontaminate", "splits": {}}) == "kept"  # manifests written before `primary`


def test_export_returns_the_written_rows(tmp_path, tiny_engine):
    from tests.export_support import labelled_output

    labels = labelled_output(tmp_path, tiny_engine)
    out = rsynth.export(labels, tmp_path / "trl.jsonl", format="trl")
    assert (
        set(out) == {"train"}
        and len(out["train"]) > 0
        and set(out["train"].column_names) == {"prompt", "completions", "labels"}
    )
    with pytest.raises(UserError, match="--format trl stores boolean"):
        rsynth.export(labels, tmp_path / "x.jsonl", label="soft")


SCRIPT = """\
import datasets
import rsynth

rows = [{"gold": "1/2", "pred": "0.5"}, {"gold": "3", "pred": "4"}]
result = rsynth.verify("math", datasets.Dataset.from_list(rows), workers=2)
print("VERDICTS", list(result["data"]["verdict"]))
"""


@pytest.mark.slow
def test_a_plain_script_without_a_main_guard(tmp_path):
    """The README's snippet as a file: spawned verifier workers must not re-run the caller's script."""
    script = tmp_path / "nb.py"
    script.write_text(SCRIPT)
    res = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("VERDICTS") == 1 and "['correct', 'incorrect']" in res.stdout


def test_generate_problems_and_its_validation(tmp_path):
    problems = rsynth.generate_problems(5, out=tmp_path / "p", template="arithmetic", max_steps=1)
    assert list(problems) == ["data"] and len(problems["data"]) == 5
    again = rsynth.generate_problems(
        5, out=tmp_path / "p", template="arithmetic", max_steps=1
    )  # already complete: same rows
    assert again["data"]["id"] == problems["data"]["id"]
    with pytest.raises(rsynth.UserError, match="--template 'poetry'"):
        rsynth.generate_problems(5, template="poetry")
