"""`rsynth card` and `rsynth push`: the card's metadata points at real files, its plots are real PNGs
of the label data, and push lists (dry run) or fails offline in one line."""

from __future__ import annotations

import glob
import json
import struct

import pytest
import yaml

from rsynth.data.shards import iter_split_rows
from tests.build_support import planted_traces, rsynth, write_recipe


@pytest.fixture(scope="module")
def carded(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("card")
    traces = planted_traces(tmp / "traces.jsonl")
    recipe = write_recipe(
        tmp / "r.yaml",
        f"""\
name: card-test
license: cc-by-4.0
out: {tmp / "out"}
defaults: {{engine: hf, model: {tiny_model_dir}, batch-rows: 2, max-new-tokens: 8, temperature: 1.0}}
stages:
  - annotate-prm: {{id: labels, source: {traces}, input-kind: traces, k0: 2, k: 2}}
  - card: {{pretty-name: Card test}}
""",
    )
    res = rsynth("build", str(recipe), "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp / "out"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_card_metadata_points_at_real_shards(carded):
    text = (carded / "README.md").read_text()
    head = yaml.safe_load(text.split("---")[1])
    assert head["license"] == "cc-by-4.0" and head["pretty_name"] == "Card test"
    assert head["size_categories"] == ["n<1K"] and head["task_categories"] == ["text-generation"]
    configs = {c["config_name"]: c for c in head["configs"]}
    assert set(configs) == {"labels", "labels-tree", "labels-questions"} and configs["labels"].get("default")
    import datasets

    for c in configs.values():
        files = sorted(carded.glob(c["data_files"][0]["path"]))
        assert files
        ds = datasets.load_dataset("arrow", data_files=[str(f) for f in files], split="train")
        split = c["data_files"][0]["path"].split("/")[1]
        assert len(ds) == json.loads((carded / "labels" / "manifest.json").read_text())["splits"][split]["rows"]


def test_card_counts_provenance_and_label_stats(carded, tiny_model_dir):
    text = (carded / "README.md").read_text()
    assert "| labels | annotate-prm | 6 | 0 | 0 | questions rows: 6, tree rows: " in text
    assert f"| labels | {tiny_model_dir} | hf | temperature=1.0, top_p=0.9, max_new_tokens=8" in text
    assert "| labelled traces | 6 |" in text and "| traces with a first error | 6 |" in text
    assert "| all-positive traces | 0 |" in text and "| traces with no final answer | " in text
    assert "last run" not in text and "this run" not in text  # figures of the data, never of the last process
    assert "```yaml\nname: card-test" in text  # the recipe itself


def test_card_plots_show_the_label_data(carded):
    traces = list(iter_split_rows(carded / "labels"))
    for name in ("mc_values", "first_error", "steps_per_trace", "pass_rate"):
        assert _png_size(carded / "plots" / f"{name}.png") == (600, 360)
        assert f"(plots/{name}.png)" in (carded / "README.md").read_text()
    # the plotted first errors are the labels: planted traces fail at their last step
    assert sorted(t["first_error"] for t in traces) == sorted(len(t["steps"]) - 1 for t in traces)


def test_card_of_one_stage_dir(carded, tmp_path):
    res = rsynth("card", str(carded / "labels"), "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    head = yaml.safe_load((tmp_path / "README.md").read_text().split("---")[1])
    # written elsewhere with -o, the card's globs still resolve from the card's own directory
    path = head["configs"][0]["data_files"][0]["path"]
    assert path.endswith("labels/data/*.arrow") and glob.glob(str(tmp_path / path))
    assert "configs pointing outside OUT" in res.stdout
    in_place = rsynth("card", str(carded / "labels"))
    assert in_place.returncode == 0, in_place.stderr
    head = yaml.safe_load((carded / "labels" / "README.md").read_text().split("---")[1])
    assert head["configs"][0]["data_files"][0]["path"] == "data/*.arrow"


def test_push_dry_run_lists_data_not_caches(carded):
    res = rsynth("push", str(carded), "--repo-id", "me/card-test", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert (
        "README.md" in res.stdout
        and "labels/data/shard-00000.arrow" in res.stdout
        and "plots/mc_values.png" in res.stdout
    )
    assert "cache.sqlite" not in res.stdout and "partition.json" not in res.stdout


def test_push_offline_fails_in_one_line(carded):
    res = rsynth(
        "push", str(carded), "--repo-id", "me/card-test", env={"HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_x"}, timeout=120
    )
    assert res.returncode == 2
    assert res.stderr.startswith("error: push to me/card-test failed:") and len(res.stderr.strip().splitlines()) == 1


def test_push_needs_a_card(tmp_path):
    res = rsynth("push", str(tmp_path), "--repo-id", "me/x", "--dry-run")
    assert res.returncode == 2 and "run `rsynth card" in res.stderr
