"""`rsynth serve-reward`: OpenRLHF's remote reward-model protocol over HTTP, on the standard library.

POST (any path; OpenRLHF posts to the `--remote_rm_url` it was given) a JSON object
`{"query": [...], "prompts": [...], "labels": [...]}` (optionally `"domains": [...]`); the answer is
`{"rewards": [...], "scores": [...], "statuses": [...]}`. `GET /health` answers the cache counts.
Requests are answered on threads and gathered into verifier batches (`Batcher`), so several trainer
workers posting at once share the verifier pool. A malformed request is a 400 with a one-line
reason; a failing verifier is a 500 (OpenRLHF retries and then stops with that line).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rsynth.config import param
from rsynth.errors import UserError
from rsynth.rewards.openrlhf import response_body, rollouts
from rsynth.rewards.scorer import Batcher

MAX_BODY = 256 * 1024 * 1024


@dataclass(frozen=True)
class ServeParams:
    host: str = param("127.0.0.1", "--host", "Address to listen on (0.0.0.0: every interface).")
    port: int = param(5000, "--port", "Port to listen on (0: any free port, printed at start).")

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UserError("--port must be between 0 and 65535")


def _handler(batcher: Batcher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: a trainer posts thousands
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/health", ""):
                self._send(200, {"ok": True, **batcher.scorer.stats()})
            else:
                self._send(404, {"error": f"no such path {self.path}; POST rollouts to any path, GET /health"})

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length <= 0 or length > MAX_BODY:
                    raise ValueError(f"a JSON body of 1 to {MAX_BODY} bytes is needed (Content-Length {length})")
                body = json.loads(self.rfile.read(length))
                if not isinstance(body, dict) or not isinstance(body.get("query"), list):
                    raise ValueError('expected a JSON object with a "query" list (and "prompts", "labels")')  # noqa: TRY004
                todo = rollouts(
                    [str(q) for q in body["query"]], body.get("prompts"), body.get("labels"), body.get("domains")
                )
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
                return
            try:
                self._send(200, response_body(batcher.score(todo)))
            except Exception as exc:  # noqa: BLE001 -- the verifier could not run (no sandbox, no Lean): say so
                self._send(500, {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})

    return Handler


class RewardServer:
    """A running server: `url`, `serve_forever()` (blocking) or `start()` (a thread), `close()`."""

    def __init__(self, batcher: Batcher, params: ServeParams | None = None) -> None:
        p = params or ServeParams()
        self.batcher = batcher
        try:
            self.httpd = ThreadingHTTPServer((p.host, p.port), _handler(batcher))
        except OSError as exc:
            raise UserError(f"cannot listen on {p.host}:{p.port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        host, port = self.httpd.server_address[:2]
        self.url = f"http://{host}:{port}/"
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> RewardServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, so only for a thread's loop
            self.httpd.shutdown()
            self._thread.join(timeout=10)
        self.httpd.server_close()
        self.batcher.close()
        self.batcher.scorer.close()
