"""OpenAIEngine against a real HTTP server (tests/openai_server.py) serving the tiny model."""

from __future__ import annotations

import pytest

from rsynth.engines.base import Prompt, SamplingParams, prompt_seed
from rsynth.engines.openai import EngineRequestError, OpenAIEngine
from rsynth.engines.registry import make_engine

PROMPTS = [Prompt.user(f"Compute {i} times {i + 2}.") for i in range(6)]
PARAMS = SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=20, seed=5)


@pytest.fixture()
def server(openai_server):
    openai_server.reset()
    return openai_server


def _engine(server, **kw) -> OpenAIEngine:
    kw.setdefault("backoff", 0.01)
    return OpenAIEngine("tiny", base_url=server.base_url, **kw)


def test_results_are_the_served_models_samples(server, tiny_engine) -> None:
    """n choices per prompt, in order, equal to the hf engine's output for the per-prompt seed the client sends."""
    engine = _engine(server, concurrency=4)
    out = engine.generate(PROMPTS, PARAMS)
    engine.close()
    assert len(out) == len(PROMPTS) and all(len(c) == 3 for c in out)
    assert server.requests == len(PROMPTS)  # one request per prompt carries n
    assert {b["n"] for b in server.bodies} == {3} and {b["max_tokens"] for b in server.bodies} == {20}
    for prompt, comps in zip(PROMPTS, out):
        direct = tiny_engine.generate([prompt], SamplingParams(3, 1.0, 1.0, 20, prompt_seed(5, prompt)))[0]
        assert [c.text for c in comps] == [c.text for c in direct]
        assert [c.finish_reason for c in comps] == [c.finish_reason for c in direct]
        assert sum(c.num_tokens for c in comps) == sum(
            c.num_tokens for c in direct
        )  # usage total is shared out exactly
    again = _engine(server).generate(PROMPTS, PARAMS)
    assert again == out  # seeds are per prompt: deterministic whatever the concurrency
    other = _engine(server).generate(PROMPTS, SamplingParams(3, 1.0, 1.0, 20, seed=6))
    assert [c.text for cs in other for c in cs] != [c.text for cs in out for c in cs]


def test_continue_final_message(server, tiny_engine) -> None:
    prefix = "Step 1: 3 times 5 is 15.\n\n"
    prompt = Prompt.user("Compute 3 times 5.", assistant_prefix=prefix)
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=12)
    (c,) = _engine(server).generate([prompt], greedy)[0]
    body = server.bodies[-1]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][-1] == {"role": "assistant", "content": prefix}
    assert c.text == tiny_engine.generate([prompt], greedy)[0][0].text


def test_requests_are_concurrent(server) -> None:
    """With concurrency 4 the server sees 4 requests at once (its barrier would fail them otherwise)."""
    server.reset(barrier=4)
    out = _engine(server, concurrency=4, max_retries=0).generate(PROMPTS[:4], PARAMS.with_n(1))
    assert len(out) == 4 and server.max_in_flight == 4


def test_retries_on_503(server) -> None:
    server.reset(fail_first=3)
    out = _engine(server, concurrency=1, max_retries=3).generate(PROMPTS[:1], PARAMS)
    assert len(out[0]) == 3 and server.requests == 4
    server.reset(fail_first=10)
    with pytest.raises(EngineRequestError, match="HTTP 503: server busy"):
        _engine(server, concurrency=1, max_retries=2).generate(PROMPTS[:1], PARAMS)
    assert server.requests == 3


def test_unknown_model_fails_at_once(server) -> None:
    engine = OpenAIEngine("no-such-model", base_url=server.base_url, backoff=0.01)
    with pytest.raises(EngineRequestError, match=r"HTTP 404: The model `no-such-model` does not exist"):
        engine.generate(PROMPTS[:1], PARAMS)
    assert server.requests == 1  # a 4xx is not retried


def test_timeouts_are_retried_then_reported(server) -> None:
    server.reset(delay=1.5)
    engine = _engine(server, concurrency=1, timeout=0.2, max_retries=1)
    with pytest.raises(EngineRequestError, match="no reply within --request-timeout 0.2s after 2 attempts"):
        engine.generate(PROMPTS[:1], PARAMS)
    assert server.requests == 2


def test_connection_refused_is_an_engine_error() -> None:
    engine = OpenAIEngine("tiny", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff=0.01)
    with pytest.raises(EngineRequestError, match="ConnectError"):
        engine.generate(PROMPTS[:1], PARAMS)


def test_registry_builds_the_openai_engine(server) -> None:
    engine = make_engine("openai", "tiny", base_url=server.base_url, concurrency=2, batch_rows=99)
    assert isinstance(engine, OpenAIEngine) and engine.concurrency == 2
    assert engine.identity() == {"engine": "openai", "model": "tiny", "base_url": server.base_url}
    assert len(engine.generate(PROMPTS[:2], PARAMS)[1]) == 3
