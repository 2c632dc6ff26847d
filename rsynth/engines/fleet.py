"""One engine over a fleet of OpenAI-compatible servers: routed by question, surviving a lost server.

`--base-url` given more than once, or `--endpoints FILE`, makes this engine: one `OpenAIEngine` per
server (its own client, `--concurrency` slots, retries), composed here.

- Routing: each request goes where `rsynth.engines.routing` says (the question's server while it has
  room), and carries the key as an `X-Session-ID` header, so a gateway in front (sgl-router, vLLM's
  production-stack router in `session` mode) can keep the same affinity.
- Capacity: `can_start` (the async scheduler's idle-slot admission) sees the whole fleet: a free slot
  on any server that is up and, where the server exposes `/metrics` (vLLM, SGLang), reports nothing
  waiting in its own queue. Live searches therefore grow with the fleet.
- Failover: a server that does not answer usably (`ServerUnavailable`) is marked down; the request,
  and every other one that fails there, is sent to the others. A server that cannot be reached or
  believed (refused, reset, cut, timed out, an invalid reply) is given up after `FAILOVER_AFTER`
  attempts; one that says it is busy (429, 5xx) after its `--max-retries` backoff
  (rsynth.engines.openai). A down server is probed (`GET /models`) after `probe_interval` seconds and
  taken back when it answers; one that fails again before it completed anything waits twice as long
  for its next probe (up to 16x): a server that answers probes but garbles requests is not retried
  on every request. Requests carry their own seeds, so the rows do not depend on which server
  answered, and the completion cache in front stores only replies that passed the checks, each once.
  The run fails only when no server is left: every listed one failed its probes for as long as a
  lone server's `--max-retries` backoff would have waited.
- Hung servers: a server that accepts connections but never answers (a stopped process, a wedged
  HTTP front end) would hold each request for `--request-timeout`, twice. Instead, a request
  unanswered for `stall_after` seconds checks that its server still answers anything: a reply, a
  `/metrics` read or a probe within the last `stall_after` seconds, else a `GET /models` (one at a
  time per server, answered within `heartbeat_timeout`). A server that answers is alive and only slow,
  and the request keeps waiting (up to `--request-timeout`: nothing is sent twice); one that does not is
  marked down and its requests go elsewhere, after `stall_after + heartbeat_timeout`, not
  2 x `--request-timeout`. A server whose HTTP front end answers while its model is stuck still costs
  the request timeout (the front end cannot be told from a slow one).
- The endpoints file (one URL per line, optionally followed by that server's concurrency; `#`
  comments) is re-read while running (at most once a second): servers join and leave without a
  restart; one that leaves finishes what it has.
- Accounting: per-server requests, completions, errors and request seconds, and the prefix-cache
  counters the server reports, go into every stage's summary and manifest (`server_usage`).

The completions do not depend on the fleet, so `identity` (cache keys, run keys) names no URL: a run
resumes, and its cache hits, whatever servers serve it.
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rsynth.engines.base import (
    Completion,
    Engine,
    Prompt,
    PromptTooLong,
    SamplingParams,
)
from rsynth.engines.openai import (
    REQUEST_HEADERS,
    EngineRequestError,
    OpenAIEngine,
    ServerUnavailable,
)
from rsynth.engines.routing import Router, route_key
from rsynth.errors import UserError

# Prometheus names, summed over label sets: vLLM (V1 and V0) and SGLang
RUNNING = ("vllm:num_requests_running", "sglang:num_running_reqs")
WAITING = ("vllm:num_requests_waiting", "sglang:num_queue_reqs")
HIT_TOKENS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
QUERY_TOKENS = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
HIT_RATE = ("vllm:gpu_prefix_cache_hit_rate", "sglang:cache_hit_rate")
SESSION_HEADER = "X-Session-ID"
FAILOVER_AFTER = 2  # attempts at an unreachable or garbling server before its requests go elsewhere
CONNECT_TIMEOUT = 10.0  # seconds: a vanished node drops SYNs; a live one accepts in milliseconds
MAX_PROBE_BACKOFF = 16  # a flapping server waits at most this many probe intervals for its next probe
# a request unanswered this long makes the fleet ask its server `GET /models` (unless it heard from the
# server meanwhile); no answer within HEARTBEAT_TIMEOUT: the server is hung and its requests go elsewhere
STALL_AFTER = 30.0
HEARTBEAT_TIMEOUT = 10.0


def parse_metrics(text: str) -> dict[str, float]:
    """The samples of a Prometheus text page, summed per metric name over their labels."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, rest = line.rpartition("}") if "}" in line else line.partition(" ")
        name = name_part.split("{")[0].strip()
        try:
            value = float(rest.split()[0])
        except (ValueError, IndexError):
            continue
        out[name] = out.get(name, 0.0) + value
    return out


def _first(metrics: dict[str, float], names: tuple[str, ...]) -> float | None:
    return next((metrics[n] for n in names if n in metrics), None)


def read_endpoints(path: Path) -> dict[str, int | None]:
    """URL -> its concurrency (None: `--concurrency`) from an endpoints file; a bad line is a one-line error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"--endpoints {path}: cannot read: {exc.strerror or exc}") from None
    out: dict[str, int | None] = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        url, extra = parts[0].rstrip("/"), parts[1:]
        if not url.startswith(("http://", "https://")) or len(extra) > 1:
            raise UserError(
                f"--endpoints {path}:{n}: expected 'URL [CONCURRENCY]' with an http(s) URL, got {line.strip()!r}"
            )
        if extra and not (extra[0].isdigit() and int(extra[0]) >= 1):
            raise UserError(f"--endpoints {path}:{n}: concurrency {extra[0]!r} is not an integer >= 1")
        out[url] = int(extra[0]) if extra else None
    return out


@dataclass
class Endpoint:
    """One server of the fleet: its client, state and counters."""

    url: str
    engine: OpenAIEngine
    slots: int
    up: bool = True
    active: bool = True  # False once it left the endpoints file (it finishes what it has)
    reason: str = ""
    retry_at: float = 0.0
    probing: bool = False
    strikes: int = 0  # times marked down since it last completed a request
    in_flight: int = 0
    requests: int = 0
    completions: int = 0
    errors: int = 0
    seconds: float = 0.0
    metrics: dict[str, float] | None = None  # the last /metrics page; None: not read (yet)
    has_metrics: bool = True  # False once /metrics answered with anything but a page
    scraped_at: float = -math.inf
    heard_at: float = -math.inf  # when it last answered anything (a reply, a probe, /metrics): monotonic
    heartbeat: asyncio.Task | None = None  # the liveness check in progress or last done (`FleetEngine._alive`)
    heartbeat_at: float = -math.inf
    tasks: set = field(default_factory=set)

    @property
    def metrics_url(self) -> str:
        base = self.url.removesuffix("/v1")
        return f"{base}/metrics"

    def waiting(self) -> float:
        return (_first(self.metrics, WAITING) or 0.0) if self.metrics else 0.0

    def free_slots(self) -> int:
        """Slots a request would start in at once: none while the server queues requests itself."""
        if not (self.up and self.active) or self.waiting() > 0:
            return 0
        return max(0, self.slots - self.in_flight)


class FleetEngine(Engine):
    name = "openai"  # rows say what answered them; the fleet is the openai engine, many times
    request_seeded = True

    def __init__(
        self,
        model: str,
        *,
        base_urls: Sequence[str] = (),
        endpoints: Path | str | None = None,
        api_key: str | None = None,
        concurrency: int = 32,
        timeout: float = 600.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        probe_interval: float = 5.0,
        metrics_interval: float = 2.0,
        routing: str = "hash",
        balance: float = 1.25,
        reread_interval: float = 1.0,
        stall_after: float = STALL_AFTER,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    ) -> None:
        super().__init__(model)
        self.concurrency, self.timeout, self.max_retries, self.backoff = concurrency, timeout, max_retries, backoff
        self.api_key = api_key
        self.probe_interval, self.metrics_interval, self.reread_interval = (
            probe_interval,
            metrics_interval,
            reread_interval,
        )
        self.stall_after, self.heartbeat_timeout = stall_after, heartbeat_timeout
        self.router = Router(routing, balance=balance)
        self.endpoints_file = Path(endpoints) if endpoints else None
        self._static = [u.rstrip("/") for u in base_urls]
        self.servers: dict[str, Endpoint] = {}  # every server seen this run, in order (accounting)
        self._file_state: tuple[float, int] | None = None
        self._checked_at = -math.inf
        self._lock = threading.Lock()
        self._client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._sync_loop: asyncio.AbstractEventLoop | None = None
        listed = self._listed(strict=True)
        if not listed:
            raise UserError("--engine openai: no server (give --base-url or an --endpoints file with at least one URL)")
        self._apply(listed)

    # -- the server list ---------------------------------------------------------------------------
    def _listed(self, strict: bool) -> dict[str, int | None] | None:
        """URL -> concurrency from --base-url and the endpoints file; None when the file is unchanged
        (or, while running, unreadable: the last good list stays, with a warning)."""
        listed: dict[str, int | None] = dict.fromkeys(self._static)
        if self.endpoints_file is None:
            return listed if strict else None
        try:
            st = self.endpoints_file.stat()
            state = (st.st_mtime, st.st_size)
        except OSError:
            state = None
        if not strict and state == self._file_state:
            return None
        try:
            listed.update(read_endpoints(self.endpoints_file))
        except UserError as exc:
            if strict:
                raise
            print(f"rsynth: {exc} (keeping the previous server list)", file=sys.stderr)
            self._file_state = state
            return None
        self._file_state = state
        return listed

    def _apply(self, listed: dict[str, int | None]) -> None:
        for url, slots in listed.items():
            ep = self.servers.get(url)
            if ep is None:
                engine = OpenAIEngine(
                    self.model,
                    base_url=url,
                    api_key=self.api_key,
                    concurrency=slots or self.concurrency,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                    backoff=self.backoff,
                    failover_after=FAILOVER_AFTER,
                    connect_timeout=CONNECT_TIMEOUT,
                )
                engine.stats = self.stats  # one set of engine counters and one occupancy for the fleet
                self.servers[url] = Endpoint(url, engine, slots or self.concurrency)
            else:
                ep.active = True
        for url, ep in self.servers.items():
            ep.active = url in listed

    def _refresh(self) -> None:
        """Re-read the endpoints file (at most every `reread_interval` s); start due probes and metric reads."""
        now = time.monotonic()
        if self.endpoints_file is not None and now - self._checked_at >= self.reread_interval:
            self._checked_at = now
            listed = self._listed(strict=False)
            if listed is not None:
                self._apply(listed)
        for ep in self.servers.values():
            if not ep.active:
                continue
            if not ep.up and not ep.probing and now >= ep.retry_at:
                ep.probing = True  # from now: one probe at a time
                self._spawn(ep, self._probe(ep))
            elif ep.up and ep.has_metrics and now - ep.scraped_at >= self.metrics_interval:
                ep.scraped_at = now
                self._spawn(ep, self._scrape(ep))

    def _spawn(self, ep: Endpoint, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        ep.tasks.add(task)  # referenced: the loop keeps only weak references to tasks
        task.add_done_callback(ep.tasks.discard)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = (loop, httpx.AsyncClient(timeout=min(self.timeout, 5.0), headers=headers))
        return self._client[1]

    async def _probe(self, ep: Endpoint) -> bool:
        """Take a down server back when `GET /models` answers."""
        ep.probing = True
        try:
            resp = await self._http().get(f"{ep.url}/models")
            ok = resp.status_code == 200
        except httpx.HTTPError:
            ok = False
        finally:
            ep.probing = False
        if ok:
            ep.heard_at = time.monotonic()
            ep.up, ep.reason = True, ""
            print(f"rsynth: server {ep.url} answers again; taking it back", file=sys.stderr)
        else:
            ep.retry_at = time.monotonic() + self.probe_interval
        return ok

    async def _scrape(self, ep: Endpoint) -> None:
        try:
            resp = await self._http().get(ep.metrics_url)
        except httpx.HTTPError:
            return  # a server that stopped answering is found out by its requests
        self._take_metrics(ep, resp)

    @staticmethod
    def _take_metrics(ep: Endpoint, resp: httpx.Response) -> None:
        if resp.status_code != 200:
            ep.has_metrics = False
            return
        ep.heard_at = time.monotonic()
        ep.metrics = parse_metrics(resp.text)

    async def _alive(self, ep: Endpoint) -> bool:
        """Whether `ep` answers at all (module docstring, hung servers): heard from within `stall_after`
        seconds, else one `GET /models` shared by every request waiting there (its answer stands for
        `stall_after` seconds)."""
        now = time.monotonic()
        if now - ep.heard_at < self.stall_after:
            return True
        loop = asyncio.get_running_loop()
        beat = ep.heartbeat
        if beat is None or beat.get_loop() is not loop or (beat.done() and now - ep.heartbeat_at >= self.stall_after):
            ep.heartbeat_at = now
            ep.heartbeat = loop.create_task(self._heartbeat(ep))
            ep.tasks.add(ep.heartbeat)
            ep.heartbeat.add_done_callback(ep.tasks.discard)
        return await asyncio.shield(ep.heartbeat)

    async def _heartbeat(self, ep: Endpoint) -> bool:
        try:
            resp = await self._http().get(f"{ep.url}/models", timeout=self.heartbeat_timeout)
        except httpx.HTTPError:
            return False
        if resp.status_code != 200:
            return False
        ep.heard_at = time.monotonic()
        return True

    async def _watched(self, ep: Endpoint, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        """`ep`'s answer to the request; a hung server's `ServerUnavailable` after `stall_after +
        heartbeat_timeout` (module docstring). The request is cancelled then: the server never answered
        it, so nothing it generated was paid for."""
        request = asyncio.ensure_future(ep.engine.agenerate(prompt, params))
        try:
            while True:
                done, _ = await asyncio.wait([request], timeout=self.stall_after)
                if done:
                    comps = request.result()
                    ep.heard_at = time.monotonic()
                    return comps
                if not await self._alive(ep):
                    raise ServerUnavailable(
                        f"{ep.url}: hung: no reply within {self.stall_after:g}s and no answer to GET /models "
                        f"within {self.heartbeat_timeout:g}s"
                    )
        finally:
            if not request.done():
                request.cancel()
                await asyncio.gather(request, return_exceptions=True)

    # -- requests ------------------------------------------------------------------------------------
    def _pick(self, key: str) -> Endpoint | None:
        usable = {url: ep for url, ep in self.servers.items() if ep.up and ep.active}
        # a server queueing requests of its own counts as full
        loads = {
            url: (ep.in_flight if ep.waiting() <= 0 else max(ep.in_flight, ep.slots), ep.slots)
            for url, ep in usable.items()
        }
        url = self.router.choose(key, loads)
        return usable[url] if url is not None else None

    def _down(self, ep: Endpoint, exc: Exception) -> None:
        if ep.up:
            print(f"rsynth: server {ep.url} is down ({exc}); sending its requests to the others", file=sys.stderr)
            ep.strikes += 1
        ep.up, ep.reason = False, str(exc)
        ep.retry_at = time.monotonic() + self.probe_interval * min(2 ** (ep.strikes - 1), MAX_PROBE_BACKOFF)

    async def _revive(self) -> None:
        """No server is up: probe every listed one until one answers, for as long as a lone server's
        `--max-retries` backoff would wait; then the run's error."""
        deadline = time.monotonic() + self.backoff * (2**self.max_retries - 1)
        wait = self.backoff
        while True:
            listed = [ep for ep in self.servers.values() if ep.active]
            if any(await asyncio.gather(*(self._probe(ep) for ep in listed))):
                return
            if time.monotonic() + wait > deadline:
                reasons = "; ".join(ep.reason or f"{ep.url}: down" for ep in listed) or "the endpoints file lists none"
                raise EngineRequestError(f"no server left in the fleet: {reasons}")
            await asyncio.sleep(wait)
            wait *= 2
            self._refresh()  # the endpoints file may list new servers by now

    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        too_long = self.too_long([prompt])
        if too_long:
            raise PromptTooLong(too_long)
        key = route_key(prompt)
        failovers = 0
        while True:
            self._refresh()
            ep = self._pick(key)
            if ep is None:
                await self._revive()
                continue
            ep.in_flight += 1
            ep.requests += 1
            t0 = time.perf_counter()
            token = REQUEST_HEADERS.set({SESSION_HEADER: key})
            try:
                comps = await self._watched(ep, prompt, params)
            except ServerUnavailable as exc:
                ep.errors += 1
                self._down(ep, exc)
                failovers += 1
                if failovers > 2 * len(self.servers) + 1:  # servers that answer probes but not requests
                    raise EngineRequestError(f"no server of the fleet answered this request: last: {exc}") from None
                continue
            except PromptTooLong:
                raise
            except Exception:
                ep.errors += 1
                raise
            finally:
                REQUEST_HEADERS.reset(token)
                ep.in_flight -= 1
                ep.seconds += time.perf_counter() - t0
            ep.completions += len(comps)
            ep.strikes = 0
            return comps

    def can_start(self, sequences: int) -> bool:
        """A free slot on some server that is up and not queueing requests itself (module docstring)."""
        return any(ep.free_slots() > 0 for ep in self.servers.values())

    def request_slots(self) -> int:
        """The slots of the servers that are up: live searches may grow to this many (Engine.request_slots)."""
        return sum(ep.slots for ep in self.servers.values() if ep.up and ep.active)

    # -- the lock-step path: the same requests, on a private event loop ----------------------------
    def _loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._sync_loop is None:
                self._sync_loop = asyncio.new_event_loop()
                threading.Thread(target=self._sync_loop.run_forever, name="rsynth-fleet", daemon=True).start()
            return self._sync_loop

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """Every prompt as its own routed request (the endpoints count the work, so the base class's
        accounting is not used)."""
        if not prompts:
            return []
        too_long = self.too_long(prompts)
        if too_long:
            raise PromptTooLong(too_long)

        async def one(prompt: Prompt) -> list[Completion] | PromptTooLong:
            try:
                return await self.agenerate(prompt, params)
            except PromptTooLong as exc:
                return exc

        async def every() -> list:
            return list(await asyncio.gather(*(one(p) for p in prompts)))

        t0 = time.perf_counter()
        results = asyncio.run_coroutine_threadsafe(every(), self._loop()).result()
        self.stats.busy_seconds += time.perf_counter() - t0
        refused = {i: "; ".join(r.reasons.values()) for i, r in enumerate(results) if isinstance(r, PromptTooLong)}
        if refused:
            raise PromptTooLong(refused, {i: r for i, r in enumerate(results) if not isinstance(r, PromptTooLong)})
        return results

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        raise NotImplementedError  # generate() is overridden

    @property
    def max_batch_prompts(self) -> int:
        return self.concurrency * 4 * max(1, len(self.servers))

    def identity(self) -> dict:
        return {"engine": self.name, "model": self.model}

    def client_settings(self) -> dict:
        return {"request timeout (s)": self.timeout, "max retries": self.max_retries, "servers": len(self.servers)}

    # -- accounting ------------------------------------------------------------------------------------
    def server_usage(self) -> dict[str, float]:
        """Per-server counters (cumulative: stages report them since their start) and the prefix-cache
        token counters of servers that expose them (read now)."""
        out: dict[str, float] = {}
        for ep in self.servers.values():
            if ep.up and ep.has_metrics:
                try:
                    self._take_metrics(ep, httpx.get(ep.metrics_url, timeout=2.0))
                except httpx.HTTPError:
                    pass
            out[f"server {ep.url} requests"] = ep.requests
            out[f"server {ep.url} completions"] = ep.completions
            out[f"server {ep.url} errors"] = ep.errors
            out[f"server {ep.url} request seconds"] = round(ep.seconds, 2)
            hits, queries = (
                (_first(ep.metrics, HIT_TOKENS), _first(ep.metrics, QUERY_TOKENS)) if ep.metrics else (None, None)
            )
            if hits is not None and queries is not None:
                out[f"server {ep.url} prefix-cache hit tokens"] = hits
                out[f"server {ep.url} prefix-cache query tokens"] = queries
        return out

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        for ep in self.servers.values():
            for task in [t for t in ep.tasks if t.get_loop() is loop]:
                task.cancel()
            await ep.engine.aclose()
        if self._client is not None and self._client[0] is loop:
            await self._client[1].aclose()
            self._client = None

    def close(self) -> None:
        if self._sync_loop is not None:
            asyncio.run_coroutine_threadsafe(self.aclose(), self._sync_loop).result()
            self._sync_loop.call_soon_threadsafe(self._sync_loop.stop)
            self._sync_loop = None
        for ep in self.servers.values():
            ep.engine.close()
        super().close()


def usage_rates(delta: dict[str, float]) -> dict[str, float]:
    """Each server's prefix-cache hit rate from its token counters over a stage (`delta`: this run's)."""
    out = {}
    for key, queries in delta.items():
        if key.endswith(" prefix-cache query tokens") and queries > 0:
            server = key[: -len(" prefix-cache query tokens")]
            out[f"{server} prefix-cache hit rate this run"] = round(
                delta.get(f"{server} prefix-cache hit tokens", 0.0) / queries, 3
            )
    return out
