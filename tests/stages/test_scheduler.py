"""The event-driven annotate-prm scheduler: identical rows to the lock-step scheduler on the real local
HTTP server (openai) and on the tiny hf model, the live-search bound, and its CLI options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rsynth.annotators import MathShepherdConfig, OmegaPRMConfig
from rsynth.data.shards import read_split
from rsynth.engines.base import SamplingParams
from rsynth.engines.hf import HFEngine
from rsynth.engines.openai import OpenAIEngine
from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate
from tests.build_support import planted_traces

SPLITS = ("data", "tree", "questions", "errors")


def _rows(out: Path) -> dict[str, list]:
    return {s: (read_split(out, s).to_pylist() if read_split(out, s) is not None else []) for s in SPLITS}


def _configs() -> list[AnnotateConfig]:
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=8, seed=3)
    return [
        AnnotateConfig(method="omegaprm", omegaprm=OmegaPRMConfig(k0=4, k=2, search_given=True), params=params),
        AnnotateConfig(method="math-shepherd", math_shepherd=MathShepherdConfig(n=3), params=params, n_solutions=2),
    ]


def _inputs(tmp_path: Path) -> Path:
    """Planted traces plus two bare problems (searched from the root) in one input."""
    path = planted_traces(tmp_path / "in.jsonl", 5)
    extra = [{"id": f"p{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(2)]
    with path.open("a") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in extra))
    return path


@pytest.mark.parametrize("config", _configs(), ids=["omegaprm", "math-shepherd"])
def test_async_and_lockstep_rows_are_identical_on_the_openai_engine(
    openai_server, tmp_path: Path, config: AnnotateConfig
) -> None:
    openai_server.reset()
    inp = _inputs(tmp_path)
    outs = {}
    for mode in ("lockstep", "async"):
        engine = OpenAIEngine("tiny", base_url=openai_server.base_url, concurrency=4, backoff=0.01)
        stats = run_annotate(
            str(inp),
            {"steps": "steps"},
            tmp_path / mode,
            engine,
            config,
            concurrent_searches=3,
            max_live_searches=2,
            scheduler=mode,
            quiet=True,
        )
        engine.close()
        assert stats["scheduler"] == mode and stats["questions (questions/)"] == 7
        assert {"sequences in flight (mean)", "sequences in flight (p10)", "engine busy fraction", "rollouts/s"} <= set(
            stats
        )
        outs[mode] = _rows(tmp_path / mode)
    assert outs["async"] == outs["lockstep"] and outs["async"]["data"]
    manifest = json.loads((tmp_path / "async" / "manifest.json").read_text())
    assert manifest["stats"]["sequences in flight (mean)"] > 0


def test_async_admits_questions_beyond_max_live_only_for_idle_slots(openai_server, tmp_path: Path) -> None:
    """OmegaPRM keeps one request per search in flight: with --concurrency 8 and --max-live-searches 2
    the engine has idle slots, so more questions go live (never past the slots); with --concurrency 2
    it has none, and two searches stay live."""
    config = _configs()[0]
    inp = planted_traces(tmp_path / "in.jsonl", 6)
    for concurrency, low, high in ((8, 3, 8), (2, 1, 2)):
        openai_server.reset()
        engine = OpenAIEngine("tiny", base_url=openai_server.base_url, concurrency=concurrency, backoff=0.01)
        stats = run_annotate(
            str(inp),
            {},
            tmp_path / f"out{concurrency}",
            engine,
            config,
            max_live_searches=2,
            scheduler="async",
            quiet=True,
            prefetch=False,
        )
        engine.close()
        assert low <= stats["searches live (max)"] <= high and openai_server.max_in_flight <= concurrency
        assert len(read_split(tmp_path / f"out{concurrency}", "questions")) == 6


def test_prefetch_fills_idle_slots_and_leaves_rows_unchanged(openai_server, tmp_path: Path) -> None:
    """With 2 live searches and 8 slots, prefetch sends likely next probes early: more requests in
    flight than searches, some of them used, within --concurrency, and the same rows as without."""
    inp = planted_traces(tmp_path / "in.jsonl", 6)
    config = _configs()[0]
    stats = {}
    for prefetch in (False, True):
        openai_server.reset()
        engine = OpenAIEngine("tiny", base_url=openai_server.base_url, concurrency=8, backoff=0.01)
        stats[prefetch] = run_annotate(
            str(inp),
            {},
            tmp_path / str(prefetch),
            engine,
            config,
            max_live_searches=2,
            scheduler="async",
            quiet=True,
            prefetch=prefetch,
        )
        engine.close()
    assert 2 < openai_server.max_in_flight <= 8  # prefetch and questions admitted for idle slots
    on = stats[True]
    assert 0 < on["prefetched requests used"] <= on["prefetched requests this run"]
    assert on["rollout requests this run"] == stats[False]["rollout requests this run"]
    assert _rows(tmp_path / "True") == _rows(tmp_path / "False")


def test_async_and_lockstep_rows_are_identical_on_hf_with_one_request_per_batch(
    tiny_model_dir: str, tmp_path: Path
) -> None:
    """hf seeds each forward batch from its prompts; with --batch-rows no larger than any request's n
    (chunked estimates ask for k/chunks = 1) every lock-step batch is one request, which is exactly what
    the async path runs, so the rows agree (docs/annotators.md)."""
    engine = HFEngine(tiny_model_dir, batch_rows=1)
    inp = _inputs(tmp_path)
    config = _configs()[0]
    for mode in ("lockstep", "async"):
        run_annotate(str(inp), {}, tmp_path / mode, engine, config, scheduler=mode, quiet=True)
    engine.close()
    assert _rows(tmp_path / "async") == _rows(tmp_path / "lockstep")


def test_bad_scheduler_is_one_line(tmp_path: Path, cli_env: dict) -> None:
    inp = planted_traces(tmp_path / "in.jsonl", 1)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsynth",
            "annotate-prm",
            "--input",
            str(inp),
            "--out",
            str(tmp_path / "o"),
            "--scheduler",
            "eager",
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert res.returncode == 2 and "--scheduler 'eager'" in res.stderr and "Traceback" not in res.stderr
