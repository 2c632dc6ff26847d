"""Several real local OpenAI-compatible servers (tests/openai_server.py) for the fleet tests.

`FleetServer` adds to the suite's server what a fleet needs to be tested against: the routing header
each request carried, `GET /v1/models` (the fleet's health probe), a `/metrics` page with vLLM's
names (running and waiting requests, prefix-cache token counters from a simple per-question cache),
and `kill()`: from then on the server answers nothing -- requests in progress lose their reply,
kept-alive connections are dropped and new ones refused -- like a preempted node. `hang()` is the
other way to stop answering: connections are still accepted but nothing, not even a probe, is
answered until `thaw()` (a stopped process, a wedged front end); `probes` counts `GET /v1/models`.

A reply is either delivered whole (and counted in `answered`) or lost with the server, never counted
and lost: writing it and killing the server take the same lock. `Tripwire` kills whichever server of
a fleet first receives its n-th request: the ring places questions by the servers' addresses (random
ports), so a victim fixed in advance may be given no question at all.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

from rsynth.engines.base import Engine
from tests.openai_server import ChatServer


class FleetServer(ChatServer):
    def __init__(
        self, engine: Engine, *, model_name: str, port: int = 0, engine_lock: threading.Lock | None = None
    ) -> None:
        super().__init__(engine, model_name=model_name, port=port)
        if engine_lock is not None:
            self._engine_lock = engine_lock  # servers sharing one in-process model take turns on it
        self.dead = False
        self.probes = 0  # GET /v1/models answered: the fleet's probes and liveness checks
        self._thawed = threading.Event()  # cleared while hung: every handler waits on it, then drops its connection
        self._thawed.set()
        self.tripwire: Tripwire | None = None  # kills the fleet's first server to get its n-th request
        self.waiting = 0  # what /metrics reports as vllm:num_requests_waiting
        self.posts = 0
        self.answered = 0  # replies delivered with 200: completions the client got (paid for)
        self.sessions: list[tuple[str | None, str]] = []  # (X-Session-ID, the question) per chat request
        self.cached: set[str] = set()
        self.hit_tokens = self.query_tokens = 0
        self._local = threading.local()
        self._connections: set[socket.socket] = set()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def kill(self) -> None:
        """Die as a process does: every open connection drops at once, and the listener is closed before
        this returns (a restart can bind the port at once; no probe reaches a half-dead server)."""
        with self._count_lock:  # a reply being written finishes first; none starts after
            self.dead = True
            connections, self._connections = list(self._connections), set()
            for conn in connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.stop()  # from a handler thread too: serve_forever runs on its own thread

    def hang(self) -> None:
        """Accept connections, answer nothing (requests and probes alike) until `thaw()`."""
        self._thawed.clear()

    def thaw(self) -> None:
        """Hung handlers drop their connections unanswered; new requests are answered again."""
        self._thawed.set()

    def stop(self) -> None:
        self.thaw()
        super().stop()

    def _stalled(self) -> bool:
        """While hung, wait to be thawed; True when this request must then go unanswered."""
        if self._thawed.is_set():
            return False
        self._thawed.wait()
        return True

    def complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        question = json.dumps([m for m in body.get("messages", []) if m.get("role") != "assistant"])
        with self._count_lock:
            self.sessions.append((getattr(self._local, "session", None), question))
            tokens = len(json.dumps(body.get("messages", [])))
            self.query_tokens += tokens
            if question in self.cached:
                self.hit_tokens += len(question)
            self.cached.add(question)
        return super().complete(body)

    def metrics_page(self) -> str:
        return (
            "\n".join(
                [
                    "# HELP vllm:num_requests_running Number of requests in model execution batches.",
                    "# TYPE vllm:num_requests_running gauge",
                    f'vllm:num_requests_running{{model_name="{self.model_name}"}} {self.in_flight}',
                    f'vllm:num_requests_waiting{{model_name="{self.model_name}"}} {self.waiting}',
                    f'vllm:prefix_cache_queries_total{{model_name="{self.model_name}"}} {float(self.query_tokens)}',
                    f'vllm:prefix_cache_hits_total{{model_name="{self.model_name}"}} {float(self.hit_tokens)}',
                ]
            )
            + "\n"
        )

    def _handler(self):
        base = super()._handler()
        server = self

        class Handler(base):  # type: ignore[valid-type, misc]
            def setup(self) -> None:
                super().setup()
                with server._count_lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._count_lock:
                    server._connections.discard(self.connection)
                super().finish()

            def _reply(self, status: int, payload: dict[str, Any] | bytes, *args: Any, **kw: Any) -> None:
                with server._count_lock:  # delivered whole and counted, or lost with the server (kill())
                    if server.dead:
                        self.close_connection = True
                        return
                    # counted before the write: once the client holds the reply, a test reading
                    # `answered` must see it (counting after let the client's thread read first)
                    paid = status == 200 and self.command == "POST"
                    server.answered += paid
                    try:
                        super()._reply(status, payload, *args, **kw)
                    except OSError:
                        server.answered -= paid  # not delivered: not paid for
                        raise

            def do_POST(self) -> None:
                if server._stalled():
                    self.close_connection = True
                    return
                with server._count_lock:
                    server.posts += 1
                    posts = server.posts
                if server.tripwire is not None and server.tripwire.trips(server, posts):
                    server.kill()
                if server.dead:
                    self.close_connection = True
                    return
                server._local.session = self.headers.get("X-Session-ID")
                super().do_POST()

            def do_GET(self) -> None:
                if server.dead or server._stalled():
                    self.close_connection = True
                    return
                if self.path.rstrip("/") == "/v1/models":
                    with server._count_lock:
                        server.probes += 1
                    super()._reply(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
                elif self.path == "/metrics":
                    data = server.metrics_page().encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    super()._reply(404, {"error": {"message": f"no route {self.path}"}})

        return Handler


class Tripwire:
    """Kills the first server of a fleet that receives its `after`-th chat request (that request and
    any in progress there lose their replies), whichever server routing gave the requests to."""

    def __init__(self, servers: list[FleetServer], after: int) -> None:
        self.after = after
        self.victim: FleetServer | None = None
        self._lock = threading.Lock()
        for s in servers:
            s.tripwire = self

    def trips(self, server: FleetServer, posts: int) -> bool:
        with self._lock:
            if self.victim is None and posts >= self.after:
                self.victim = server
                return True
            return False


def start_fleet(engine: Engine, n: int, lock: threading.Lock | None = None) -> list[FleetServer]:
    lock = lock or threading.Lock()
    return [FleetServer(engine, model_name="tiny", engine_lock=lock).start() for _ in range(n)]


def fleet_fixture(engine: Engine, n: int) -> Iterator[list[FleetServer]]:
    """A pytest fixture's body: `n` servers, stopped afterwards unless a test killed them."""
    servers = start_fleet(engine, n)
    yield servers
    for s in servers:
        if not s.dead:
            s.stop()


def restart(server: FleetServer) -> FleetServer:
    """A fresh server on a killed one's port (its address is what the fleet knows)."""
    return FleetServer(
        server.engine, model_name=server.model_name, port=server.port, engine_lock=server._engine_lock
    ).start()
