"""Recipe validation: every kind of mistake is one line naming the file, line and key."""

from __future__ import annotations

import pytest

from rsynth.errors import UserError
from rsynth.recipes.recipe import load_recipe
from tests.build_support import rsynth, write_recipe

GOOD = """\
name: t
stages:
  - problems:
      n: 4
  - solutions:
      input: problems
      n-samples: 2
  - annotate-prm:
      input: problems
      k0: 8
"""

CASES = [
    (
        "unknown stage",
        GOOD.replace("  - solutions:", "  - solution:"),
        "r.yaml:5: stages[1]: unknown stage 'solution' (did you mean 'solutions'?)",
    ),
    (
        "unknown key",
        GOOD.replace("k0: 8", "k00: 8"),
        "r.yaml:10: stages[2].annotate-prm: unknown key 'k00' (did you mean 'k0'?)",
    ),
    (
        "misspelt key",
        GOOD.replace("n-samples: 2", "n_samples: 2"),
        "r.yaml:7: stages[1].solutions: unknown key 'n_samples' (did you mean 'n-samples'?)",
    ),
    (
        "missing key",
        GOOD.replace("      n: 4\n", "      template: arithmetic\n"),
        "r.yaml:4: stages[0].problems: missing key 'n' (Number of problems; with --from, rewrites in total (spread evenly over the seeds, first seeds first).)",
    ),
    (
        "wrong type",
        GOOD.replace("n-samples: 2", "n-samples: two"),
        "r.yaml:7: stages[1].solutions: key 'n-samples' must be an integer, got 'two'",
    ),
    (
        "bad choice",
        GOOD.replace("      n: 4\n", "      n: 4\n      template: arithmatic\n"),
        "r.yaml:5: stages[0].problems: key 'template': 'arithmatic' is not one of arithmetic, linear, fractions, percent, mixed (did you mean 'arithmetic'?)",
    ),
    (
        "input not produced earlier",
        GOOD.replace("      input: problems\n      n-samples", "      input: labels\n      n-samples"),
        "r.yaml:6: stages[1].solutions: input 'labels' is not produced by an earlier stage (earlier stages: problems)",
    ),
    (
        "input from a later stage",
        GOOD.replace("      input: problems\n      k0", "      input: annotate-prm\n      k0"),
        "r.yaml:9: stages[2].annotate-prm: input 'annotate-prm' is not produced by an earlier stage (earlier stages: problems, solutions)",
    ),
    (
        "no input",
        GOOD.replace("      input: problems\n      n-samples", "      n-samples"),
        "r.yaml:6: stages[1].solutions: give exactly one of 'input' (the id of an earlier stage) or 'source' (a file, directory or hub id)",
    ),
    (
        "unknown top-level key",
        "stage:\n  - problems: {n: 1}\n",
        "r.yaml:1: unknown key 'stage' (did you mean 'stages'?)",
    ),
    (
        "bad defaults key",
        "defaults: {modle: x}\nstages:\n  - problems: {n: 1}\n",
        "r.yaml:1: defaults: unknown key 'modle' (did you mean 'model'?) (defaults hold model and sampling keys)",
    ),
    (
        "duplicate id",
        "stages:\n  - problems: {n: 1}\n  - problems: {n: 2}\n",
        "r.yaml:3: stages[1].problems: stage id 'problems' is used twice; give this stage an 'id'",
    ),
    (
        "bad range",
        GOOD.replace("n-samples: 2", "n-samples: 2\n      keep-pass-rate: 0.1-0.9"),
        "r.yaml:8: stages[1].solutions: key 'keep-pass-rate' must be a range LO:HI in [0, 1], e.g. '0.1:0.9', got '0.1-0.9'",
    ),
    ("invalid yaml", "stages:\n  - problems: {n: 1\n", "r.yaml:3: invalid YAML"),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_recipe_names_file_line_and_key(tmp_path, text, expected):
    path = write_recipe(tmp_path / "r.yaml", text)
    with pytest.raises(UserError) as err:
        load_recipe(path)
    assert str(err.value).startswith(str(tmp_path / expected.split(":", 1)[0]) + ":" + expected.split(":", 1)[1]), str(
        err.value
    )


def test_good_recipe_fills_defaults(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", GOOD), ["defaults.model=/m", "stages.annotate-prm.k=3"])
    ann = recipe.stage("annotate-prm")
    assert (ann.params["k0"], ann.params["k"], ann.params["model"], ann.params["max-new-tokens"]) == (8, 3, "/m", 2048)
    assert recipe.stage("solutions").input == "problems"


def test_set_errors(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", GOOD)
    with pytest.raises(UserError, match=r"no stage with id 'solution' \(did you mean 'solutions'\?\)"):
        load_recipe(path, ["stages.solution.model=x"])
    with pytest.raises(UserError, match="unknown key 'k00'"):
        load_recipe(path, ["stages.annotate-prm.k00=1"])


def test_cli_prints_one_line_and_exits_2(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", GOOD.replace("k0: 8", "k00: 8"))
    res = rsynth("build", str(path))
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: {path}:10: stages[2].annotate-prm: unknown key 'k00' (did you mean 'k0'?)"
    assert "Traceback" not in res.stderr
    res = rsynth("build", str(path), "--from", "nope")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_decontaminate_stage_takes_the_semantic_settings(tmp_path):
    """`semantic` and its settings are recipe keys generated from SemanticConfig (the CLI's options)."""
    from rsynth.decontam.paraphrase import SemanticConfig
    from rsynth.recipes.adapters import config_from

    text = "stages:\n  - problems: {n: 2}\n  - decontaminate: {input: problems, semantic: true, semantic-lexical: 0.3, semantic-embed-all: true}\n"
    stage = load_recipe(write_recipe(tmp_path / "r.yaml", text)).stage("decontaminate")
    assert stage.params["semantic"] is True
    assert config_from(SemanticConfig, stage.params) == SemanticConfig(lexical=0.3, embed_all=True)
    bad = text.replace("semantic-lexical: 0.3", "semantic-lexicon: 0.3")
    with pytest.raises(UserError, match="unknown key 'semantic-lexicon' \\(did you mean 'semantic-lexical'\\?\\)"):
        load_recipe(write_recipe(tmp_path / "bad.yaml", bad))


@pytest.mark.parametrize(
    "export, message",
    [
        ("{input: annotate-prm, format: trl, label: soft}", "--format trl stores boolean"),
        ("{input: annotate-prm, format: openrlhf}", "--format openrlhf needs --tokenizer"),
        ("{input: annotate-prm, step-separator: ''}", "--step-separator must not be empty"),
    ],
    ids=["trl-soft", "openrlhf-no-tokenizer", "empty-separator"],
)
def test_export_options_are_refused_at_plan_time(tmp_path, export, message):
    """`build --dry-run` runs the export stage's own validation: the build would fail only after sampling."""
    path = write_recipe(
        tmp_path / "r.yaml",
        f"""\
name: t
stages:
  - annotate-prm: {{source: {tmp_path / "traces.jsonl"}, input-kind: traces}}
  - export: {export}
""",
    )
    with pytest.raises(UserError, match=message) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}:4: stages[1].export: ")
    res = rsynth("build", str(path), "--dry-run")
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_search_config_errors_are_refused_at_plan_time(tmp_path):
    path = write_recipe(
        tmp_path / "r.yaml",
        f"""\
name: t
stages:
  - annotate-prm: {{source: {tmp_path / "traces.jsonl"}, k0: 0}}
""",
    )
    with pytest.raises(UserError, match="k0, k, L and chunks must be >= 1"):
        load_recipe(path)
