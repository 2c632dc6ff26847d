"""How fast, and on what, the fleet gives up on a server (rsynth.engines.openai module docstring): a
server that cannot be reached or believed (refused, cut, invalid replies) is failed over after 2
attempts whatever `--max-retries` says, a busy one (429, 503) keeps its backoff, and nothing a server
sent wrong reaches the cache. Real local HTTP servers (tests/fleet_support.py) with the suite's fault
modes (tests/openai_server.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from rsynth.engines.base import Prompt, SamplingParams
from rsynth.engines.cache import CachedEngine
from rsynth.engines.fleet import FAILOVER_AFTER, FleetEngine
from rsynth.engines.openai import InvalidReply, OpenAIEngine
from rsynth.engines.routing import Ring, route_key
from tests.fleet_support import FleetServer, fleet_fixture

PARAMS = SamplingParams(n=2, temperature=1.0, top_p=1.0, max_new_tokens=6, seed=5)


@pytest.fixture()
def pair(tiny_engine):
    yield from fleet_fixture(tiny_engine, 2)


def _homed(urls: list[str], at: str, n: int) -> list[Prompt]:
    """`n` prompts whose question's home on the ring of `urls` is `at` (the ports are random, so the
    test picks its prompts rather than hoping some land there)."""
    ring, out, i = Ring(urls), [], 0
    while len(out) < n:
        prompt = Prompt.user(f"What is {i} + 2?")
        if next(ring.walk(route_key(prompt))) == at:
            out.append(prompt)
        i += 1
    return out


async def _probe(fleet: FleetEngine, ep) -> bool:
    ok = await fleet._probe(ep)
    await fleet.aclose()
    return ok


def _clean(server: FleetServer, prompts: list[Prompt]) -> list:
    one = OpenAIEngine("tiny", base_url=server.base_url, concurrency=4, backoff=0.01)
    out = one.generate(prompts, PARAMS)
    one.close()
    server.reset()
    return out


@pytest.mark.parametrize("fault", ["invalid_json", "short", "cut"])
def test_a_server_that_keeps_garbling_is_failed_over_after_two_attempts_and_nothing_it_sent_is_cached(
    pair: list[FleetServer], tmp_path: Path, fault: str
) -> None:
    bad, good = pair
    prompts = _homed([bad.base_url, good.base_url], bad.base_url, 3)
    clean = _clean(good, prompts)
    bad.reset(fault=fault, faults=-1)  # every reply it sends is wrong
    fleet = FleetEngine(
        "tiny", base_urls=[bad.base_url, good.base_url], concurrency=4, max_retries=5, backoff=0.01, probe_interval=60
    )
    cached = CachedEngine(fleet, tmp_path / "cache.sqlite")
    assert cached.generate(prompts, PARAMS) == clean  # the run goes on, with the healthy server's answers
    tries = Counter(json.dumps(b, sort_keys=True) for b in bad.bodies)
    assert set(tries.values()) == {FAILOVER_AFTER}  # each request twice there, not --max-retries + 1 = 6 times
    ep = fleet.servers[bad.base_url]
    assert not ep.up and f"after {FAILOVER_AFTER} attempts" in ep.reason and ep.strikes == 1
    assert good.requests == len(prompts)
    # it answers probes, so it is taken back; failing again before it completed anything doubles its wait
    assert asyncio.run(_probe(fleet, ep)) and ep.up
    assert fleet.generate(prompts, PARAMS) == clean
    assert not ep.up and ep.strikes == 2 and ep.retry_at - time.monotonic() > 100  # 2 x probe_interval 60
    cached.close()
    good.reset()
    again = CachedEngine(
        FleetEngine("tiny", base_urls=[good.base_url], concurrency=4, backoff=0.01), tmp_path / "cache.sqlite"
    )
    assert again.generate(prompts, PARAMS) == clean and good.requests == 0  # the cache holds only good replies
    again.close()


@pytest.mark.parametrize("busy", ["retry_after", "fail_first"])
def test_a_busy_server_keeps_its_backoff_and_its_questions(pair: list[FleetServer], busy: str) -> None:
    home, other = pair
    prompt = _homed([home.base_url, other.base_url], home.base_url, 1)
    if busy == "retry_after":
        home.reset(fault="retry_after", faults=3, retry_after="0")  # 429, Retry-After: 0
    else:
        home.reset(fail_first=3)  # 503 "server busy"
    fleet = FleetEngine("tiny", base_urls=[home.base_url, other.base_url], concurrency=4, max_retries=5, backoff=0.01)
    assert len(fleet.generate(prompt, PARAMS)[0]) == 2
    assert home.requests == 4 and other.requests == 0 and fleet.servers[home.base_url].up  # 3 busy, then answered
    fleet.close()


def test_a_refused_connection_fails_over_in_one_backoff_not_max_retries(pair: list[FleetServer]) -> None:
    good = pair[0]
    with socket.socket() as sock:  # a port nothing listens on: every connection is refused
        sock.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        prompts = _homed([gone, good.base_url], gone, 2)
        fleet = FleetEngine("tiny", base_urls=[gone, good.base_url], concurrency=4, max_retries=5, backoff=2.0)
        t0 = time.monotonic()
        out = fleet.generate(prompts, PARAMS)
        took = time.monotonic() - t0
    fleet.close()
    assert len(out) == 2 and good.requests == 2
    assert "ConnectError after 2 attempts" in fleet.servers[gone].reason
    # one backoff of 1-3 s; --max-retries 5 would have waited (2+4+8+16+32 s) x (0.5-1.5) >= 31 s
    assert took < 20


def test_a_lone_server_that_garbles_still_gets_every_retry(pair: list[FleetServer]) -> None:
    bad = pair[0]
    bad.reset(fault="invalid_json", faults=-1)
    one = OpenAIEngine("tiny", base_url=bad.base_url, max_retries=3, backoff=0.01)
    with pytest.raises(InvalidReply, match="invalid reply after 4 attempts"):
        one.generate([Prompt.user("What is 1 + 1?")], PARAMS)
    one.close()
    assert bad.requests == 4  # nowhere else to go: --max-retries applies


def test_a_hung_server_is_failed_over_after_a_liveness_check_not_two_request_timeouts(
    pair: list[FleetServer], tmp_path: Path
) -> None:
    hung, good = pair
    prompts = _homed([hung.base_url, good.base_url], hung.base_url, 3)
    clean = _clean(good, prompts)
    hung.hang()  # it accepts connections and answers nothing, probes included
    fleet = FleetEngine(
        "tiny",
        base_urls=[hung.base_url, good.base_url],
        concurrency=4,
        timeout=60,  # 2 x --request-timeout would be 120 s
        backoff=0.01,
        probe_interval=60,
        stall_after=0.3,
        heartbeat_timeout=0.5,
    )
    cached = CachedEngine(fleet, tmp_path / "cache.sqlite")
    t0 = time.monotonic()
    out = cached.generate(prompts, PARAMS)
    took = time.monotonic() - t0
    cached.close()
    hung.thaw()
    assert out == clean  # the rows a one-server run writes
    assert took < 15
    ep = fleet.servers[hung.base_url]
    assert not ep.up and "hung" in ep.reason
    assert hung.answered == 0 and hung.paid == 0  # its requests were never answered, so never paid
    assert good.paid == len(prompts) * PARAMS.n  # each completion paid once, at the server that answered


def test_a_slow_server_that_answers_its_liveness_checks_keeps_its_requests(pair: list[FleetServer]) -> None:
    slow, other = pair
    prompts = _homed([slow.base_url, other.base_url], slow.base_url, 2)
    clean = _clean(slow, prompts)
    slow.reset(delay=1.5)  # each request takes 1.5 s: 5 stall periods, each checked and answered
    fleet = FleetEngine(
        "tiny",
        base_urls=[slow.base_url, other.base_url],
        concurrency=4,
        timeout=30,
        stall_after=0.3,
        heartbeat_timeout=1.0,
        metrics_interval=3600,  # no /metrics read stands in for the liveness checks
    )
    probes = slow.probes
    assert fleet.generate(prompts, PARAMS) == clean
    fleet.close()
    assert slow.probes > probes  # the liveness checks ran, and it answered them
    assert fleet.servers[slow.base_url].up and slow.requests == len(prompts) and other.requests == 0
