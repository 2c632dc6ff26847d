"""The engines' asynchronous path (`agenerate`): one request awaited while others are in flight.

Real components: the tiny transformers model, and the real local HTTP server (tests/openai_server.py)
for the openai engine. Each request's completions must equal the batched path's for the same
request, so the async scheduler writes the lock-step rows (tests/test_annotate_pipeline.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from rsynth.engines.base import InFlight, Prompt, SamplingParams
from rsynth.engines.cache import CachedEngine
from rsynth.engines.hf import HFEngine
from rsynth.engines.openai import EngineRequestError, OpenAIEngine

PROMPTS = [Prompt.user(f"Compute {i} times {i + 2}.") for i in range(6)]
PARAMS = SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=16, seed=5)


async def _all(engine, prompts, params):
    try:
        return list(await asyncio.gather(*(engine.agenerate(p, params) for p in prompts)))
    finally:
        await engine.aclose()


@pytest.fixture()
def server(openai_server):
    openai_server.reset()
    return openai_server


def _openai(server, **kw) -> OpenAIEngine:
    kw.setdefault("backoff", 0.01)
    return OpenAIEngine("tiny", base_url=server.base_url, **kw)


def test_openai_async_equals_sync_and_is_concurrent(server) -> None:
    """All requests reach the server at once (its barrier fails them otherwise), n choices each,
    equal to the thread-pool path's samples: both send the same per-request seed."""
    engine = _openai(server, concurrency=6, max_retries=0)
    server.reset(barrier=6)
    out = asyncio.run(_all(engine, PROMPTS, PARAMS))
    assert server.max_in_flight == 6 and all(len(c) == 3 for c in out)
    server.reset()
    assert out == engine.generate(PROMPTS, PARAMS)
    assert engine.stats.completions == 2 * 6 * 3


def test_openai_async_keeps_at_most_concurrency_in_flight_and_retries(server) -> None:
    server.reset(fail_first=2)
    engine = _openai(server, concurrency=2)
    out = asyncio.run(_all(engine, PROMPTS, PARAMS.with_n(1)))
    assert len(out) == 6 and server.max_in_flight <= 2 and server.requests == 6 + 2  # the two 503s were retried


def test_openai_async_refusal_is_one_line(server) -> None:
    engine = OpenAIEngine("no-such-model", base_url=server.base_url, backoff=0.01)
    with pytest.raises(EngineRequestError, match=r"HTTP 404: The model `no-such-model` does not exist") as err:
        asyncio.run(_all(engine, PROMPTS[:1], PARAMS))
    assert "\n" not in str(err.value)


def test_hf_async_is_per_request_and_deterministic(tiny_engine: HFEngine) -> None:
    """hf serves one request per generate call: a request's samples are those of the batched path on
    that request alone, whatever else is in flight."""
    out = asyncio.run(_all(tiny_engine, PROMPTS, PARAMS))
    assert out == [tiny_engine.generate([p], PARAMS)[0] for p in PROMPTS]
    assert asyncio.run(_all(tiny_engine, PROMPTS[::-1], PARAMS)) == out[::-1]


def test_cache_async_stores_on_arrival_and_shares_identical_requests(tiny_engine: HFEngine, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    cached = CachedEngine(tiny_engine, db)
    calls = tiny_engine.stats.calls
    stored_when_second_arrived = []

    async def run() -> list:
        first = asyncio.ensure_future(cached.agenerate(PROMPTS[0], PARAMS))
        twin = asyncio.ensure_future(cached.agenerate(PROMPTS[0], PARAMS))  # in flight together: one engine request
        out = [await first, await twin]
        stored_when_second_arrived.append(
            sqlite3.connect(str(db)).execute("SELECT count(*) FROM completions").fetchone()[0]
        )
        out.append(await cached.agenerate(PROMPTS[1], PARAMS))
        return out

    out = asyncio.run(run())
    assert out[0] == out[1] == tiny_engine.generate([PROMPTS[0]], PARAMS)[0]
    assert stored_when_second_arrived == [1]  # committed as it arrived, before later requests ran
    assert tiny_engine.stats.calls - calls == 2 + 1 and cached.misses == 2 and cached.hits == 1
    reopened = CachedEngine(tiny_engine, db)
    calls = tiny_engine.stats.calls
    assert asyncio.run(_all(reopened, PROMPTS[:2], PARAMS)) == [out[0], out[2]]
    assert tiny_engine.stats.calls == calls and reopened.hits == 2  # nothing paid twice
    assert reopened.generate(PROMPTS[:2], PARAMS) == [out[0], out[2]]  # the lock-step path reads the same entries


def test_in_flight_summary_is_time_weighted() -> None:
    now = [0.0]
    occ = InFlight(lambda: now[0])
    mark = occ.mark()
    occ.change(4)
    now[0] = 9.0
    occ.change(-4)
    now[0] = 10.0  # 9 s at 4 sequences, 1 s idle
    s = occ.summary(mark)
    assert s == {"mean": pytest.approx(3.6), "p10": 0.0, "busy": pytest.approx(0.9)}
    mark = occ.mark()
    with occ.hold(2):
        now[0] = 12.0
    assert occ.summary(mark) == {"mean": pytest.approx(2.0), "p10": 2.0, "busy": pytest.approx(1.0)}
