"""A small OpenAI-compatible `/v1/chat/completions` server over any rsynth `Engine` (tests and bench).

It honours what `OpenAIEngine` sends (n, max_tokens, temperature, top_p, seed, stop,
`continue_final_message`) and has knobs to misbehave on purpose, so the client's retry, error and
timeout paths are exercised over real HTTP:

* `fail_first=N`: answer the first N requests with 503 (transient: the client must retry);
* `delay=S`: sleep S seconds before answering (the client's timeout must fire);
* a prompt longer than the engine's context: 400 with vLLM's "maximum context length" wording;
* `barrier=K`: hold each request until K are in flight at once (proves the client sends concurrently;
  if they never arrive together the request fails with 400 instead of hanging);
* `fault=F, faults=N` (opt-in; N=-1: every request): the first N requests misbehave as F --
  `short` (200 with one choice fewer than `n`), `invalid_json` (200 with an HTML error page),
  `no_finish` (200, choices without a finish_reason), `retry_after` (429 with `Retry-After:
  retry_after`, a number of seconds or an HTTP date), `hold` (the right reply after `hold` seconds,
  past a short client timeout) and `cut` (headers and half the body, then the connection closes).
  `paid` counts the completions the engine generated, so a test can prove none was paid twice.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rsynth.engines.base import Engine, Prompt, PromptTooLong, SamplingParams

FAULTS = ("short", "invalid_json", "no_finish", "retry_after", "hold", "cut")


class ChatServer:
    def __init__(self, engine: Engine, *, model_name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.engine = engine
        self.model_name = model_name
        self.fail_first = 0
        self.delay = 0.0
        self.barrier: threading.Barrier | None = None
        self.fault: str | None = None
        self.faults = 0
        self.retry_after = "1"
        self.hold = 0.0
        self.paid = 0  # completions the engine generated (every choice of every request it ran)
        self.requests = 0  # every POST received, failed ones included
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._count_lock = threading.Lock()
        self._engine_lock = threading.Lock()  # engines are not thread-safe; the server serialises them
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def reset(
        self,
        *,
        fail_first: int = 0,
        delay: float = 0.0,
        barrier: int = 0,
        fault: str | None = None,
        faults: int = 0,
        retry_after: str = "1",
        hold: float = 0.0,
    ) -> None:
        """Set the misbehaviour knobs and zero the counters (one test at a time uses the server), once
        requests an earlier test abandoned (client timeouts) have drained, so in-flight counts are fresh."""
        deadline = time.time() + 30
        while self.in_flight and time.time() < deadline:
            time.sleep(0.05)
        with self._count_lock:
            self.fail_first, self.delay = fail_first, delay
            self.barrier = threading.Barrier(barrier, timeout=30) if barrier > 1 else None
            assert fault in (None, *FAULTS), fault
            self.fault, self.faults, self.retry_after, self.hold = fault, faults, retry_after, hold
            self.requests, self.bodies, self.max_in_flight, self.paid = 0, [], 0, 0

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- request handling ------------------------------------------------------------------------
    def complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one chat-completions body: (HTTP status, JSON reply)."""
        if body.get("model") != self.model_name:
            return 404, {
                "error": {"message": f"The model `{body.get('model')}` does not exist.", "type": "NotFoundError"}
            }
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, {"error": {"message": "messages must be a non-empty list", "type": "BadRequestError"}}
        pairs = [(m["role"], m["content"]) for m in messages]
        prefix = ""
        if body.get("continue_final_message"):
            if pairs[-1][0] != "assistant":
                return 400, {"error": {"message": "continue_final_message needs a final assistant message"}}
            prefix = pairs.pop()[1]
        params = SamplingParams(
            n=int(body.get("n", 1)),
            temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
            max_new_tokens=int(body.get("max_tokens", 16)),
            seed=int(body.get("seed") or 0),
            stop=tuple(body.get("stop") or ()),
        )
        try:
            with self._engine_lock:
                comps = self.engine.generate([Prompt(tuple(pairs), prefix)], params)[0]
                self.paid += len(comps)
        except PromptTooLong as exc:  # worded as vLLM words it
            return 400, {
                "error": {
                    "message": f"This model's maximum context length is exceeded: {exc}",
                    "type": "BadRequestError",
                }
            }
        choices = [
            {"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason}
            for i, c in enumerate(comps)
        ]
        used = sum(c.num_tokens for c in comps)
        return 200, {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "model": self.model_name,
            "choices": choices,
            "usage": {"prompt_tokens": 0, "completion_tokens": used, "total_tokens": used},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _reply(
                self,
                status: int,
                payload: dict[str, Any] | bytes,
                headers: dict[str, str] | None = None,
                cut: bool = False,
            ) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(payload, bytes) else "text/html")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data[: len(data) // 2] if cut else data)
                    if cut:  # the connection drops mid-body: the client sees fewer bytes than promised
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                except (BrokenPipeError, ConnectionResetError, OSError):  # the client gave up (timeout test)
                    pass

            def _misbehave(self, fault: str, body: dict[str, Any]) -> None:
                if fault == "retry_after":
                    self._reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": server.retry_after})
                    return
                if fault == "invalid_json":
                    self._reply(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
                    return
                if fault == "hold":
                    time.sleep(server.hold)
                status, payload = server.complete(body)
                if status == 200 and fault == "short":
                    payload["choices"] = payload["choices"][:-1]
                if status == 200 and fault == "no_finish":
                    for c in payload["choices"]:
                        c["finish_reason"] = None
                self._reply(status, payload, cut=fault == "cut")

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._count_lock:
                    server.requests += 1
                    server.bodies.append(body)
                    fail = server.requests <= server.fail_first
                    fault = (
                        server.fault
                        if server.fault and (server.faults < 0 or server.requests <= server.faults)
                        else None
                    )
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    barrier, delay = server.barrier, server.delay
                try:
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        self._reply(404, {"error": {"message": f"no route {self.path}"}})
                        return
                    if fail:
                        self._reply(503, {"error": {"message": "server busy, try again"}})
                        return
                    if barrier is not None:
                        try:
                            barrier.wait()
                        except threading.BrokenBarrierError:
                            self._reply(400, {"error": {"message": "requests did not arrive concurrently"}})
                            return
                    if delay:
                        time.sleep(delay)
                    if fault:
                        self._misbehave(fault, body)
                        return
                    status, payload = server.complete(body)
                    self._reply(status, payload)
                finally:
                    with server._count_lock:
                        server.in_flight -= 1

        return Handler


def serve(engine: Engine, *, model_name: str, port: int = 0) -> ChatServer:
    """Start a server in a background thread on 127.0.0.1 (port 0: any free port)."""
    return ChatServer(engine, model_name=model_name, port=port).start()
