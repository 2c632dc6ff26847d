"""The fleet engine against 3 real local HTTP servers (tests/fleet_support.py) serving the tiny model:
routing by question, a server killed mid-run, a server that comes back, the endpoints file, and
capacity read from the servers' /metrics."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from rsynth.annotators import OmegaPRMConfig
from rsynth.data.shards import read_split
from rsynth.engines.base import Prompt, SamplingParams
from rsynth.engines.cache import CachedEngine
from rsynth.engines.fleet import FleetEngine, parse_metrics
from rsynth.engines.openai import EngineRequestError, OpenAIEngine
from rsynth.engines.params import EngineParams
from rsynth.engines.routing import Router, question_key, route_key
from rsynth.errors import UserError
from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate
from rsynth.stages.judge import JudgeConfig, run_judge
from tests.build_support import planted_traces
from tests.fleet_support import FleetServer, Tripwire, fleet_fixture, restart

SPLITS = ("data", "tree", "questions", "errors")
CONFIG = AnnotateConfig(
    method="omegaprm",
    omegaprm=OmegaPRMConfig(k0=4, k=2, search_given=True),
    params=SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=8, seed=3),
)
PARAMS = SamplingParams(n=2, temperature=1.0, top_p=1.0, max_new_tokens=6, seed=1)


@pytest.fixture()
def fleet(tiny_engine):
    yield from fleet_fixture(tiny_engine, 3)


def _fleet(servers: list[FleetServer], **kw) -> FleetEngine:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("max_retries", 1)
    kw.setdefault("probe_interval", 0.05)
    return FleetEngine("tiny", base_urls=[s.base_url for s in servers], concurrency=8, **kw)


def _rows(out: Path) -> dict[str, list]:
    return {s: (read_split(out, s).to_pylist() if read_split(out, s) is not None else []) for s in SPLITS}


def _annotate(engine, inp: Path, out: Path, live: int = 4) -> dict:
    return run_annotate(str(inp), {}, out, engine, CONFIG, max_live_searches=live, scheduler="async", quiet=True)


def test_each_question_stays_on_one_server_and_says_so_in_a_header(fleet, tmp_path: Path) -> None:
    inp = planted_traces(tmp_path / "in.jsonl", 6)
    engine = _fleet(fleet)
    stats = _annotate(engine, inp, tmp_path / "out", live=1)
    engine.close()
    # live searches grow with the fleet's 3 x 8 slots, not only to 4 x --max-live-searches 1
    assert stats["searches live (max)"] > 4
    homes: dict[str, set[int]] = {}
    for i, server in enumerate(fleet):
        for session, question in server.sessions:
            assert session is not None and len(session) == 16
            homes.setdefault(question, set()).add(i)
    assert len(homes) == 6 and all(len(h) == 1 for h in homes.values())  # every probe of a question on its server
    assert sum(bool(s.sessions) for s in fleet) >= 2  # and the questions spread over the fleet
    for server in fleet:  # one session id per question: the question's own key, whatever the stage
        assert len({q for _, q in server.sessions}) == len(set(server.sessions))
    problems = [json.loads(line)["problem"] for line in inp.read_text().splitlines()]
    assert {k for s in fleet for k, _ in s.sessions} == {question_key(p) for p in problems}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())["stats"]
    for server in fleet:
        assert manifest[f"server {server.base_url} requests this run"] == len(server.sessions)
        assert manifest[f"server {server.base_url} errors this run"] == 0
        if server.sessions:  # the server's own prefix-cache counters: every probe after the first hits
            assert 0 < manifest[f"server {server.base_url} prefix-cache hit rate this run"] < 1
    assert stats["rollout requests this run"] == sum(len(s.sessions) for s in fleet)


def test_the_judge_sends_every_trace_of_a_question_where_the_question_went(fleet, tmp_path: Path) -> None:
    traces = [json.loads(line) for line in planted_traces(tmp_path / "t.jsonl", 3).read_text().splitlines()]
    rows = [{**t, "id": f"{t['id']}-{j}", "steps": t["steps"][: 2 + j]} for t in traces for j in range(2)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # 2 traces a question
    engine = _fleet(fleet)
    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=8)
    run_judge(str(tmp_path / "in.jsonl"), {}, tmp_path / "out", engine, JudgeConfig(batch=2, sampling=sampling))
    engine.close()
    seen: dict[str, set[int]] = {}
    for i, server in enumerate(fleet):
        for session, _ in server.sessions:
            seen.setdefault(session, set()).add(i)
    # each critique chat differs, yet a question's 2 critiques share its key and its server
    assert seen.keys() == {question_key(t["problem"]) for t in traces}
    assert all(len(homes) == 1 for homes in seen.values()) and sum(len(s.sessions) for s in fleet) == 6


def test_a_server_killed_mid_run_is_routed_around_with_the_rows_of_one_server(fleet, tmp_path: Path) -> None:
    inp = planted_traces(tmp_path / "in.jsonl", 5)
    one = OpenAIEngine("tiny", base_url=fleet[0].base_url, concurrency=8, backoff=0.01)
    _annotate(one, inp, tmp_path / "one")
    one.close()
    for s in fleet:
        s.reset()
        s.sessions.clear()
        s.answered = 0
    # whichever server first gets its third request dies with it (and with any in progress there):
    # the ring depends on the servers' random ports, so a server named in advance may get no question
    wire = Tripwire(fleet, after=3)
    cache = tmp_path / "cache.sqlite"
    engine = CachedEngine(_fleet(fleet), cache)
    stats = _annotate(engine, inp, tmp_path / "fleet")
    engine.close()
    victim = wire.victim
    assert victim is not None and victim.dead and victim.answered <= 2 and victim.posts >= 3
    assert _rows(tmp_path / "fleet") == _rows(tmp_path / "one")
    assert stats[f"server {victim.base_url} errors this run"] >= 1
    assert sum(stats[f"server {s.base_url} requests this run"] for s in fleet if s is not victim) > 0
    # every completion was paid once: each answered request is one the cache stored, none twice
    assert sum(s.answered for s in fleet) == stats["engine prompts sent this run"]
    # and a re-run pays nothing: the cache holds it all
    again = CachedEngine(_fleet(fleet), cache)
    before = sum(s.answered for s in fleet)
    _annotate(again, inp, tmp_path / "again")
    again.close()
    assert sum(s.answered for s in fleet) == before and _rows(tmp_path / "again") == _rows(tmp_path / "one")


def test_a_server_that_comes_back_is_used_again_and_none_left_is_the_error(fleet) -> None:
    engine = _fleet(fleet)
    prompts = [Prompt.user(f"What is {i} + {i}?") for i in range(12)]
    fleet[2].kill()
    first = engine.generate(prompts, PARAMS)
    assert len(first) == 12 and not engine.servers[fleet[2].base_url].up
    fleet[2] = restart(fleet[2])
    time.sleep(0.1)  # past the probe interval: the next requests start a probe, which takes it back
    assert engine.generate(prompts, PARAMS) == first  # requests carry their seeds: the same answers, wherever they ran
    assert engine.servers[fleet[2].base_url].up
    more = [Prompt.user(f"What is {i} - 1?") for i in range(12)]
    engine.generate(more, PARAMS)
    assert fleet[2].answered > 0
    for s in fleet:
        s.kill()
    time.sleep(0.1)
    with pytest.raises(EngineRequestError, match="no server left in the fleet"):
        engine.generate(prompts[:1], PARAMS)
    engine.close()


def test_the_endpoints_file_is_reread_while_running(fleet, tmp_path: Path) -> None:
    path = tmp_path / "endpoints.txt"
    path.write_text(f"# the fleet\n{fleet[0].base_url}  4\n")
    engine = FleetEngine("tiny", endpoints=path, concurrency=8, backoff=0.01, reread_interval=0.0)
    prompts = [Prompt.user(f"What is {i} times 3?") for i in range(9)]
    engine.generate(prompts, PARAMS)
    assert fleet[0].answered == 9 and fleet[1].answered == 0
    assert engine.servers[fleet[0].base_url].slots == 4
    path.write_text(f"{fleet[1].base_url}\n{fleet[2].base_url}\n")  # 0 leaves, 1 and 2 join
    engine.generate([Prompt.user(f"What is {i} times 5?") for i in range(9)], PARAMS)
    assert fleet[0].answered == 9 and fleet[1].answered + fleet[2].answered == 9
    path.write_text("not a url\n")  # a bad edit while running: the last good list stays
    engine.generate(prompts[:2], PARAMS)
    engine.close()
    with pytest.raises(UserError, match=r"endpoints.txt:1: expected 'URL \[CONCURRENCY\]'"):
        FleetEngine("tiny", endpoints=path)
    path.write_text(f"{fleet[0].base_url} zero\n")
    with pytest.raises(UserError, match="endpoints.txt:1: concurrency 'zero'"):
        FleetEngine("tiny", endpoints=path)


def test_capacity_counts_every_server_and_their_own_queues(fleet) -> None:
    engine = _fleet(fleet, metrics_interval=0.0)

    async def scrape() -> None:
        for ep in engine.servers.values():
            await engine._scrape(ep)
        await engine.aclose()

    assert engine.can_start(1)
    for s in fleet:
        s.waiting = 2  # every server queues requests of its own: nothing would start at once
    asyncio.run(scrape())
    assert not engine.can_start(1)
    fleet[1].waiting = 0
    asyncio.run(scrape())
    assert engine.can_start(1)
    engine.close()


def test_routing_is_consistent_bounded_and_spills_to_the_least_loaded() -> None:
    router = Router()
    servers = {f"s{i}": (0, 8) for i in range(4)}
    keys = [f"q{i}" for i in range(400)]
    home = {k: router.choose(k, servers) for k in keys}
    assert len(set(home.values())) == 4 and max(list(home.values()).count(s) for s in servers) < 160  # an even share
    fewer = {k: router.choose(k, {s: v for s, v in servers.items() if s != "s3"}) for k in keys}
    assert all(fewer[k] == home[k] for k in keys if home[k] != "s3")  # a server leaving moves only its own questions
    key = next(k for k in keys if home[k] == "s0")
    assert router.choose(key, {**servers, "s0": (8, 8)}) != "s0"  # full: spills
    # home full while another server has a free slot: the question waits at home (its prefixes are
    # there) while home is within 1.25x the fleet's mean load, and goes on past that bound
    busy = {"s0": (8, 8), "s1": (8, 8), "s2": (8, 8), "s3": (5, 8)}
    assert router.choose(key, busy) == "s0"
    assert router.choose(key, {**busy, "s0": (12, 8)}) != "s0"
    assert router.choose(key, {"s0": (9, 8), "s1": (12, 8)}) == "s0"  # all full: the least loaded
    # a question stays home while its server has a slot, however busy it is next to the others
    assert router.choose(key, {**servers, "s0": (7, 8)}) == "s0"
    # every server full: it queues at home unless home is past 1.25x the mean load
    assert router.choose(key, {s: (8, 8) for s in servers}) == "s0"
    assert router.choose(key, {**{s: (8, 8) for s in servers}, "s0": (14, 8)}) != "s0"
    rr = Router("round-robin")
    assert [rr.choose("same", servers) for _ in range(8)] == ["s0", "s1", "s2", "s3"] * 2
    assert route_key(Prompt.user("Q", assistant_prefix="a")) == route_key(Prompt.user("Q", assistant_prefix="b"))
    assert route_key(Prompt.user("Q")) != route_key(Prompt.user("R"))


def test_params_make_a_fleet_from_repeated_base_urls_or_a_file(fleet, tmp_path: Path) -> None:
    urls = [s.base_url for s in fleet]
    engine = EngineParams(engine="openai", model="tiny", base_url=urls).build(None)
    assert isinstance(engine, FleetEngine) and list(engine.servers) == urls
    assert engine.identity() == {"engine": "openai", "model": "tiny"}  # no URL: the cache serves any fleet
    engine.close()
    single = EngineParams(engine="openai", model="tiny", base_url=urls[0]).build(None)
    assert isinstance(single, OpenAIEngine)
    single.close()
    path = tmp_path / "eps"
    path.write_text("\n".join(urls[1:]))
    engine = EngineParams(engine="openai", model="tiny", endpoints=str(path)).build(None)
    assert list(engine.servers) == urls[1:]  # the default --base-url is not a server of the file's fleet
    engine.close()


def test_parse_metrics_sums_label_sets() -> None:
    page = (
        '# HELP x\nvllm:num_requests_waiting{model_name="a"} 2.0\n'
        'vllm:num_requests_waiting{model_name="b"} 3\nplain 1e3\n'
    )
    assert parse_metrics(page) == {"vllm:num_requests_waiting": 5.0, "plain": 1000.0}


def test_the_cli_takes_base_url_repeated_and_a_bad_endpoints_file_is_one_line(
    fleet, tmp_path: Path, cli_env: dict
) -> None:
    import subprocess
    import sys

    inp = planted_traces(tmp_path / "in.jsonl", 3)
    base = [
        sys.executable,
        "-m",
        "rsynth",
        "annotate-prm",
        "--input",
        str(inp),
        "--engine",
        "openai",
        "--model",
        "tiny",
        "--k0",
        "4",
        "--k",
        "2",
        "--max-new-tokens",
        "8",
        "--quiet",
    ]
    urls = [a for s in fleet[:2] for a in ("--base-url", s.base_url)]
    done = subprocess.run(  # noqa: PLW1510 (the exit status is the assertion)
        [*base, "--out", str(tmp_path / "out"), *urls], capture_output=True, text=True, env=cli_env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "out" / "manifest.json").read_text())["stats"]
    sent = [stats[f"server {s.base_url} requests this run"] for s in fleet[:2]]
    assert sum(sent) == stats["engine prompts sent this run"] > 0 and fleet[2].posts == 0
    bad = tmp_path / "eps.txt"
    bad.write_text(f"{fleet[0].base_url}\nhttp://x:1/v1 many\n")
    done = subprocess.run(  # noqa: PLW1510 (the exit status is the assertion)
        [*base, "--out", str(tmp_path / "bad"), "--endpoints", str(bad)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("eps.txt:2: concurrency 'many' is not an integer >= 1")
