"""One answer rule for `generate solutions` and annotate-prm, a no_answer verdict kept apart from wrong
ones, the no-answer rate in run stats, sequential draws served with fresh samples, and positive
traces in annotate-prm's output -- on the tiny real model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rsynth.annotators import RolloutRequest, SearchResult
from rsynth.answers import NO_ANSWER, extract_answer
from rsynth.data.readers import Record
from rsynth.data.shards import iter_split_rows
from rsynth.engines.base import Completion, SamplingParams
from rsynth.engines.cache import CachedEngine
from rsynth.runner.loop import Item
from rsynth.stages.annotate.lockstep import RoundScheduler
from rsynth.stages.annotate.rollouts import AnnotateConfig, Task, draw_params
from rsynth.stages.domains import verdict_word
from rsynth.stages.solutions import Problem, SolutionSampler, SolutionsConfig
from rsynth.verifiers.math import MathVerifier
from tests.build_support import planted_traces

TEXTS = [
    "Sara has 7 pencils.\n\nSara now has 7 + 6 = 13 pencils.",
    "So she has 12 pencils.",
    "She is happy.",
    "The answer is 13",
]


def test_solutions_and_annotate_extract_and_judge_alike(tiny_engine):
    """The issue's example: right number, no marker. Both pipelines must say correct (was
    unparseable in one and incorrect in the other); text with no number at all is no_answer."""
    with MathVerifier() as verifier:
        sampler = SolutionSampler(tiny_engine, verifier, SolutionsConfig())
        items = [Item(0, Record("x", 1, {}), Problem("p", "Sara...", "13"))]
        comps = [[Completion(t, 5, "stop") for t in TEXTS]]
        answers = [extract_answer(t) for t in TEXTS]
        assert answers == ["13", "12", None, "13"]
        verdicts = sampler.verify(items, comps, answers)
        assert [v.status for v in verdicts] == ["correct", "incorrect", NO_ANSWER, "correct"]
        rows = sampler._rows(items, comps, answers, verdicts)[0]
        assert [r["final_answer"] for _, r in rows] == answers and sampler.stats["no_answer"] == 1
        checker = AnnotateConfig().checker()
        assert [checker.check("13", (), t)[1] for t in TEXTS] == answers
        explicit = AnnotateConfig(answer_fallback="boxed,answer-is,hashes").checker()
        assert [explicit.check("13", (), t)[1] for t in TEXTS] == [None, None, None, "13"]
    assert verdict_word("math", False, None) == NO_ANSWER and verdict_word("math", False, "12") == "incorrect"
    assert verdict_word("code", False, None) == "fail"


def test_sequential_draws_get_fresh_samples_through_the_cache(tiny_engine, tmp_path):
    """Draw 1 of a prefix must not be served draw 0's cached completions again; a repeated draw is."""
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=3)
    assert draw_params(params, 2, 0) == params.with_n(2) and draw_params(params, 2, 1).seed != params.seed
    engine = CachedEngine(tiny_engine, tmp_path / "cache.sqlite")
    config = AnnotateConfig(params=params)
    got: list[list[str]] = []

    class Probe(RoundScheduler):
        def search(self, task, seed):
            replies = yield [RolloutRequest(("Step 1: 3 + 4 = 7",), 2, 0)]
            got.append([r.steps for r in replies[0]])
            replies = yield [RolloutRequest(("Step 1: 3 + 4 = 7",), 2, 1)]
            got.append([r.steps for r in replies[0]])
            replies = yield [RolloutRequest(("Step 1: 3 + 4 = 7",), 2, 0)]
            got.append([r.steps for r in replies[0]])
            return SearchResult("labelled")

    with MathVerifier() as verifier:
        sched = Probe(engine, verifier, config)
        sched.run([Task("t", "What is 3 + 4?", "7", None, {})])
    assert got[0] != got[1] and got[0] == got[2]
    assert engine.hits == 1 and sched.stats["completions"] == 6


@pytest.mark.slow  # ~45 s on 2 busy cores: a model load and a search in a subprocess
def test_annotate_prm_writes_positive_traces_and_the_no_answer_rate(tiny_model_dir, tmp_path):
    """Planted traces state the right answer in step 1, so rollouts from their prefixes are right:
    with --search-given the right rollouts come back as all-positive traces."""
    import subprocess

    inp = planted_traces(tmp_path / "traces.jsonl", n=2)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "rsynth",
        "annotate-prm",
        "--input",
        str(inp),
        "--out",
        str(out),
        "--model",
        tiny_model_dir,
        "--engine",
        "hf",
        "--k",
        "4",
        "--min-correct",
        "2",
        "--chunks",
        "2",
        "--max-new-tokens",
        "8",
        "--search-given",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    rows = list(iter_split_rows(out, "data"))
    given = [r for r in rows if r["id"] in ("t0", "t1")]
    positives = [r for r in rows if r["first_error"] == -1]
    assert len(given) == 2 and all(r["first_error"] == len(r["steps"]) - 1 for r in given)
    assert positives and all(r["verdict"] == "correct" and all(r["step_hard"]) for r in positives)
    assert len({tuple(r["steps"]) for r in rows}) == len(rows)
    tree = list(iter_split_rows(out, "tree"))
    assert {n["k"] for n in tree if n["prefix_steps"]} == {2}  # two right rollouts settle a prefix: a chunk of 2 of k=4
    assert [n["k"] for n in tree if not n["prefix_steps"]] == [32] * 2  # given_k0: each question's pass rate first
    stats = json.loads((Path(out) / "manifest.json").read_text())["stats"]
    assert 0.0 <= stats["no-answer rate this run"] <= 1.0
    assert "traces with no final answer" in res.stdout and "all-positive traces" in res.stdout
