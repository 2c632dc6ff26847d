"""OpenAIEngine and the completion cache against a real HTTP server that misbehaves on purpose
(tests/openai_server.py fault modes): every bad reply is a failed attempt, retried, never cached."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from rsynth.engines.base import Completion, Prompt, SamplingParams
from rsynth.engines.cache import CachedEngine
from rsynth.engines.openai import EngineRequestError, OpenAIEngine, reply_problem, retry_after

PROMPTS = [Prompt.user(f"Add {i} and {i + 3}.") for i in range(2)]
PARAMS = SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=2)


@pytest.fixture()
def server(openai_server):
    openai_server.reset()
    return openai_server


@pytest.fixture()
def clean(server) -> list[list[Completion]]:
    """What a healthy server answers for PROMPTS (the reference every recovered run must equal)."""
    out = _engine(server).generate(PROMPTS, PARAMS)
    server.reset()
    return out


def _engine(server, **kw) -> OpenAIEngine:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("concurrency", 1)
    return OpenAIEngine("tiny", base_url=server.base_url, **kw)


@pytest.mark.parametrize("fault", ["short", "invalid_json", "no_finish", "cut"])
def test_bad_replies_are_retried_and_the_result_is_the_healthy_one(server, clean, fault: str) -> None:
    server.reset(fault=fault, faults=1)
    assert _engine(server, max_retries=2).generate(PROMPTS, PARAMS) == clean
    assert server.requests == len(PROMPTS) + 1  # one failed attempt, then each prompt once


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("short", "2 choices for n=3"),
        ("invalid_json", "a body that is not JSON: '<html>"),
        ("no_finish", "choice 0 has no finish_reason"),
        ("cut", "RemoteProtocolError"),
    ],
)
def test_a_server_that_keeps_misbehaving_is_one_line_naming_it(server, fault: str, said: str) -> None:
    server.reset(fault=fault, faults=-1)
    with pytest.raises(EngineRequestError) as info:
        _engine(server, max_retries=1).generate(PROMPTS[:1], PARAMS)
    message = str(info.value)
    assert message.startswith(f"{server.base_url}/chat/completions: ") and said in message and "\n" not in message
    assert "after 2 attempts" in message and server.requests == 2


def test_retry_after_seconds_and_http_date_are_honoured_and_capped(server, clean) -> None:
    server.reset(fault="retry_after", faults=1, retry_after="1")
    t0 = time.monotonic()
    assert _engine(server).generate(PROMPTS, PARAMS) == clean
    assert time.monotonic() - t0 >= 0.95 and server.requests == 3  # the backoff alone would wait ~0.01 s
    server.reset(fault="retry_after", faults=1, retry_after=formatdate(time.time() + 2, usegmt=True))
    t0 = time.monotonic()
    assert _engine(server).generate(PROMPTS[:1], PARAMS) == clean[:1]
    assert time.monotonic() - t0 >= 0.5  # HTTP dates have 1 s resolution: at least ~1 s of the 2 remains
    server.reset(fault="retry_after", faults=1, retry_after="3600")
    t0 = time.monotonic()
    assert _engine(server, retry_after_cap=0.2).generate(PROMPTS[:1], PARAMS) == clean[:1]
    assert time.monotonic() - t0 < 5


def test_retry_after_parsing() -> None:
    assert retry_after("2") == 2.0 and retry_after("0.5") == 0.5 and retry_after("-3") == 0.0
    assert retry_after(None) is None and retry_after("soon") is None
    assert 25 < retry_after(formatdate(time.time() + 30, usegmt=True)) <= 30
    assert retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0


def test_reply_problem_names_what_is_wrong() -> None:
    good = {"choices": [{"index": i, "message": {"content": "x"}, "finish_reason": "stop"} for i in range(2)]}
    assert reply_problem(good, 2) is None
    assert reply_problem(good, 3) == "2 choices for n=3"
    assert reply_problem({"error": "x"}, 1).startswith("no `choices` list")
    assert (
        reply_problem({"choices": [{"index": 0, "message": {"content": None}, "finish_reason": "stop"}]}, 1)
        == "choice 0 has no text"
    )
    assert (
        reply_problem({"choices": [{"index": 1, "text": "a", "finish_reason": "length"}]}, 1)
        == "choice indexes are not 0..0"
    )


def test_a_reply_held_past_the_timeout_is_retried(server, clean) -> None:
    server.reset(fault="hold", faults=1, hold=2.5)  # the retry must answer within the timeout on a loaded machine
    assert _engine(server, timeout=2.0).generate(PROMPTS, PARAMS) == clean
    assert server.requests == len(PROMPTS) + 1


def test_async_path_retries_bad_replies(server, clean) -> None:
    server.reset(fault="short", faults=1)
    engine = _engine(server)

    async def run() -> list[list[Completion]]:
        try:
            return [await engine.agenerate(p, PARAMS) for p in PROMPTS]
        finally:
            await engine.aclose()

    assert asyncio.run(run()) == clean and server.requests == len(PROMPTS) + 1


def test_a_failed_reply_is_never_cached_and_nothing_is_paid_twice(server, clean, tmp_path: Path) -> None:
    server.reset(fault="short", faults=-1)
    cached = CachedEngine(_engine(server, max_retries=0), tmp_path / "cache.sqlite")
    with pytest.raises(EngineRequestError, match="2 choices for n=3"):
        cached.generate(PROMPTS, PARAMS)
    cached.close()
    assert sqlite3.connect(tmp_path / "cache.sqlite").execute("SELECT count(*) FROM completions").fetchone() == (0,)
    server.reset()
    cached = CachedEngine(_engine(server), tmp_path / "cache.sqlite")
    assert cached.generate(PROMPTS, PARAMS) == clean and server.paid == 3 * len(PROMPTS)
    assert cached.generate(PROMPTS, PARAMS) == clean and server.requests == len(PROMPTS)  # the second time: all hits
    cached.close()


def test_a_stored_entry_that_does_not_match_its_request_is_a_miss(server, clean, tmp_path: Path) -> None:
    """A short entry an older rsynth stored is not replayed: it is asked again and replaced."""
    path = tmp_path / "cache.sqlite"
    cached = CachedEngine(_engine(server), path)
    keys = [cached.key(p, PARAMS) for p in PROMPTS]
    cached.check()  # creates the database
    cached.close()
    db = sqlite3.connect(path)
    short = json.dumps([c.as_dict() for c in clean[0][:2]])
    db.execute("INSERT INTO completions VALUES (?, ?)", (keys[0], short))
    db.execute("INSERT INTO completions VALUES (?, ?)", (keys[1], "not json"))
    db.commit()
    db.close()
    cached = CachedEngine(_engine(server), path)
    assert cached.generate(PROMPTS, PARAMS) == clean and server.requests == len(PROMPTS)
    assert cached.generate(PROMPTS, PARAMS) == clean and server.requests == len(PROMPTS)  # replaced by the good reply
    cached.close()


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_a_damaged_cache_file_is_moved_aside_with_one_warning(
    server, clean, tmp_path: Path, capfd, damage: str
) -> None:
    path = tmp_path / "cache.sqlite"
    cached = CachedEngine(_engine(server), path)
    cached.generate(PROMPTS, PARAMS)
    cached.close()
    data = path.read_bytes()
    path.write_bytes(b"this is not a database" * 100 if damage == "garbage" else data[: len(data) // 3])
    server.reset()
    cached = CachedEngine(_engine(server), path)
    assert cached.generate(PROMPTS, PARAMS) == clean
    cached.close()
    err = capfd.readouterr().err
    assert err.count("warning:") == 1 and "cache.sqlite is damaged" in err and "cache.sqlite.damaged-1" in err
    assert (tmp_path / "cache.sqlite.damaged-1").exists() and cached.moved_aside == tmp_path / "cache.sqlite.damaged-1"
    assert server.requests == len(PROMPTS)  # a fresh cache: asked again, once each


def test_the_cache_is_not_opened_until_used(server, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"garbage")
    CachedEngine(_engine(server), path).close()  # an already-complete run builds the engine and never asks it
    assert path.read_bytes() == b"garbage"
