"""Outputs that load as they are (issue 15): empty splits, export formats named by their suffix,
cards whose configs resolve, honest plots and label statistics, and the fields the README promises."""

from __future__ import annotations

import json

import pytest
import yaml

from rsynth.data.shards import MANIFEST, iter_split_rows
from tests.build_support import rsynth
from tests.export_support import labelled_output
from tests.paths import BENCHMARKS


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, tiny_engine):
    return labelled_output(tmp_path_factory.mktemp("exports"), tiny_engine, generation=True)


def test_empty_splits_are_a_shard_with_the_split_schema(labelled):
    """`errors/*.arrow` resolves and reads with its columns. (`datasets.load_dataset` itself refuses
    any 0-example split, "Instruction 'train' corresponds to no data"; `Dataset.from_file` reads it.)"""
    import datasets

    from rsynth.api import load_output

    manifest = json.loads((labelled / MANIFEST).read_text())
    errors = manifest["splits"]["errors"]
    assert errors["rows"] == 0 and [(s["file"], s["rows"]) for s in errors["shards"]] == [
        ("errors/shard-00000.arrow", 0)
    ]
    files = sorted((labelled / "errors").glob("*.arrow"))
    assert files
    ds = datasets.Dataset.from_file(str(files[0]))
    assert len(ds) == 0 and ds.column_names == ["source", "row", "field", "reason", "raw"]
    loaded = load_output(labelled)
    assert set(loaded) == {"data", "tree", "questions", "errors"} and len(loaded["errors"]) == 0


def test_export_refuses_input_without_labels(tmp_path):
    res = rsynth("import", "processbench", str(BENCHMARKS / "processbench_gsm8k.json"), "-o", str(tmp_path / "pb"))
    if res.returncode != 0:  # the benchmark copy is machine-local; an in-repo file keeps the check
        from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA
        from rsynth.data.shards import ShardSetWriter

        writer = ShardSetWriter(
            tmp_path / "pb", {"data": TRACE_SCHEMA, "errors": ERROR_SCHEMA}, stage="import", run_key="k"
        )
        writer.add("data", {"id": "a", "problem": "p", "steps": ["s"]}, 0)
        writer.close()
    res = rsynth("export", "-i", str(tmp_path / "pb"), "-o", str(tmp_path / "x.jsonl"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "none with step labels (run annotate-prm first)" in res.stderr
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("suffix", [".csv", ".txt", ""])
def test_export_refuses_a_suffix_it_cannot_write(labelled, tmp_path, suffix):
    res = rsynth("export", "-i", str(labelled), "-o", str(tmp_path / f"x{suffix}"))
    assert res.returncode == 2 and "unknown suffix" in res.stderr and not (tmp_path / f"x{suffix}").exists()


def test_export_writes_the_format_its_suffix_names(labelled, tmp_path):
    import datasets

    loaded = {}
    for suffix, builder in ((".jsonl", "json"), (".json", "json"), (".parquet", "parquet")):
        out = tmp_path / f"trl{suffix}"
        res = rsynth("export", "-i", str(labelled), "-o", str(out), "--format", "trl")
        assert res.returncode == 0, res.stderr
        loaded[suffix] = datasets.load_dataset(builder, data_files=str(out), split="train").to_list()
    assert isinstance(json.loads((tmp_path / "trl.json").read_text()), list)
    assert (tmp_path / "trl.parquet").read_bytes()[:4] == b"PAR1"
    assert loaded[".jsonl"] == loaded[".json"] == loaded[".parquet"] and len(loaded[".jsonl"]) == 6


def test_step_separator_joins_math_shepherd_steps(labelled, tmp_path):
    out = tmp_path / "ms.jsonl"
    res = rsynth(
        "export", "-i", str(labelled), "-o", str(out), "--format", "math-shepherd", "--step-separator", "\\n\\n"
    )
    assert res.returncode == 0, res.stderr
    row = json.loads(out.read_text().splitlines()[0])
    trace = next(iter_split_rows(labelled))
    assert row["input"] == trace["problem"] + " " + "\n\n".join(f"{s} ки" for s in trace["steps"])


def test_trace_rows_carry_what_the_readme_promises(labelled):
    traces = list(iter_split_rows(labelled))
    assert [t["num_tokens"] for t in traces] == [30 + i for i in range(6)]  # kept from the given traces
    assert {t["finish_reason"] for t in traces} == {"stop"}
    ids = {t["id"]: t["steps"] for t in traces}
    nodes = [n for n in iter_split_rows(labelled, "tree") if n["prefix_steps"]]
    assert nodes and all(n["trace_id"] in ids for n in nodes)
    assert all(ids[n["trace_id"]][: len(n["prefix_steps"])] == n["prefix_steps"] for n in nodes)


def test_mean_step_mc_is_over_real_estimates(labelled):
    """Not the traces' step_mc, whose last entry is each trace's own verdict as a k=1 'estimate'."""
    from rsynth.stages.label_summary import label_summary

    nodes = [n for n in iter_split_rows(labelled, "tree") if n["prefix_steps"]]
    summary = label_summary(labelled)
    assert "mean step MC" not in summary
    assert summary["estimated step prefixes (tree/)"] == len(nodes) and all(n["k"] == 2 for n in nodes)
    assert summary["mean MC of estimated step prefixes"] == pytest.approx(sum(n["mc"] for n in nodes) / len(nodes))


@pytest.fixture(scope="module")
def carded_elsewhere(labelled, tmp_path_factory):
    out = tmp_path_factory.mktemp("card-elsewhere")
    res = rsynth("card", str(labelled), "-o", str(out))
    assert res.returncode == 0, res.stderr
    return out


def test_card_written_elsewhere_points_at_real_files(carded_elsewhere, labelled):
    import datasets

    text = (carded_elsewhere / "README.md").read_text()
    head = yaml.safe_load(text.split("---")[1])
    for c in head["configs"]:
        path = c["data_files"][0]["path"]
        assert datasets.load_dataset("arrow", data_files=str(carded_elsewhere / path), split="train") is not None
    nodes = [n for n in iter_split_rows(labelled, "tree") if n["prefix_steps"]]
    assert f"({len(nodes)} nodes of `tree/`, k = 2 rollouts each)" in text  # the caption says what is plotted


def test_card_refuses_a_config_that_matches_no_file(labelled, tmp_path):
    from rsynth.cards.card import check_configs
    from rsynth.errors import UserError

    with pytest.raises(UserError, match="matches no file"):
        check_configs([{"config_name": "x", "data_files": [{"split": "train", "path": "nowhere/*.arrow"}]}], tmp_path)


def test_push_dry_run_warns_when_no_data_goes_up(carded_elsewhere):
    res = rsynth("push", str(carded_elsewhere), "--repo-id", "me/x", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "warning: no data would be uploaded" in res.stderr


@pytest.mark.parametrize("repo_id", ["no-namespace", "me/", "me/bad name", "a/b/c", "me/x--y", "me/x.git", "-me/x"])
def test_invalid_repo_ids(repo_id):
    from rsynth.cards.push import check_repo_id
    from rsynth.errors import UserError

    with pytest.raises(UserError, match="--repo-id"):
        check_repo_id(repo_id)
    check_repo_id("me/gsm8k-omegaprm_v1.2")


def test_push_refuses_an_invalid_repo_id(carded_elsewhere):
    res = rsynth("push", str(carded_elsewhere), "--repo-id", "me/bad name", "--dry-run")
    assert res.returncode == 2 and res.stderr.startswith("error: --repo-id")


@pytest.mark.slow
def test_card_records_the_export_step_separator(tiny_model_dir, tmp_path):
    from tests.build_support import planted_traces, write_recipe

    traces = planted_traces(tmp_path / "traces.jsonl", n=2)
    recipe = write_recipe(
        tmp_path / "r.yaml",
        f"""\
name: sep
out: {tmp_path / "out"}
defaults: {{engine: hf, model: {tiny_model_dir}, batch-rows: 2, max-new-tokens: 8, temperature: 1.0}}
stages:
  - annotate-prm: {{id: labels, source: {traces}, input-kind: traces, k0: 2, k: 2}}
  - export: {{input: labels, format: math-shepherd, step-separator: "\\n\\n"}}
  - card: {{}}
""",
    )
    res = rsynth("build", str(recipe), "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    text = (tmp_path / "out" / "README.md").read_text()
    assert '| `export/math-shepherd.jsonl` | math-shepherd | hard | `"\\n\\n"` |' in text


def test_soft_export_never_invents_values_and_the_card_reports_the_estimated_share(
    labelled, carded_elsewhere, tmp_path
):
    """Unestimated steps are null in the rows; export refuses, drops or masks them as told (issue 22)."""
    from rsynth.stages.label_summary import label_summary

    traces = list(iter_split_rows(labelled))
    steps = sum(len(t["step_mc"]) for t in traces)
    nulls = sum(m is None for t in traces for m in t["step_mc"])
    assert 0 < nulls < steps
    res = rsynth("export", "-i", str(labelled), "-o", str(tmp_path / "s.jsonl"), "--format", "jsonl", "--label", "soft")
    assert res.returncode == 2 and "has no MC estimate" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = rsynth(
        "export",
        "-i",
        str(labelled),
        "-o",
        str(tmp_path / "s.jsonl"),
        "--format",
        "jsonl",
        "--label",
        "soft",
        "--unestimated",
        "mask",
    )
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["labels"] for r in rows] == [t["step_mc"] for t in traces]  # estimates or null, nothing filled in
    res = rsynth(
        "export",
        "-i",
        str(labelled),
        "-o",
        str(tmp_path / "t.jsonl"),
        "--format",
        "trl",
        "--label",
        "threshold=0.5",
        "--unestimated",
        "drop",
    )
    kept = [t for t in traces if None not in t["step_mc"]]
    if kept:
        assert res.returncode == 0, res.stderr
        assert len((tmp_path / "t.jsonl").read_text().splitlines()) == len(kept)
    else:
        assert res.returncode == 2 and "dropped by --unestimated drop" in res.stderr
    summary = label_summary(labelled)
    estimated = sum(m is not None for t in traces for m in t["step_mc"][:-1])
    assert summary["steps backed by a rollout estimate (share)"] == pytest.approx(estimated / steps)
    assert summary["steps with no MC value (null soft label, share)"] == pytest.approx(nulls / steps)
    assert "steps backed by a rollout estimate (share)" in (carded_elsewhere / "README.md").read_text()
