"""Engine for any OpenAI-compatible server (vllm serve, SGLang, TGI, llama.cpp server).

Many requests are kept in flight (bounded by `concurrency`) so the server can batch them; one
request per prompt carries `n`, so k rollouts from a prefix are one request. Transient failures
(connection errors, a connection cut mid-reply, no reply within `timeout`, 408/409/429/5xx) are
retried with exponential backoff, or after the server's `Retry-After` (seconds or an HTTP date,
capped); other 4xx answers are the user's to fix and fail at once with the server's message.

Two kinds of failure are told apart, because a fleet (rsynth.engines.fleet) has somewhere else to send
the request: a server that is *busy* (408/409/425/429/5xx, `Retry-After`) is alive and asks to wait,
so it keeps the whole `--max-retries` backoff; a server that *cannot be reached or believed*
(connection refused or reset, a reply cut off, a connect or read timeout, an invalid 200 reply) gets
`failover_after` attempts (a fleet's members: 2, about half a second apart) before `ServerUnavailable`
fails it over. A lone engine (`failover_after=None`) retries both kinds `--max-retries` times: it has
nowhere else to go, and a restarting server comes back.

A 200 reply is checked before anyone sees it (`reply_problem`): JSON that parses, exactly the `n`
choices asked for, each with a text and a finish reason. A reply that fails is a failed attempt
like a 5xx -- retried, never returned, so never cached -- because a short or cut reply stored in the
completion cache would be replayed by every later run.

Continuing a partial solution uses the chat API with the partial text as a final assistant message
and `continue_final_message` (vLLM and SGLang honour it). Servers report only a total token count per
request, so it is shared among the n choices in proportion to their text length.

The asynchronous path (`agenerate`, used by the event-driven scheduler) sends each request on an
`httpx.AsyncClient` as soon as it is submitted, at most `concurrency` at once, with the same retries,
backoff and one-line error as the thread-pool path; both paths share the retry decision below.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import random
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx

from rsynth.engines.base import Completion, Engine, Prompt, PromptTooLong, SamplingParams, prompt_seed

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
RETRY_AFTER_CAP = 60.0  # seconds: a server asking for longer is waited for this long, then asked again
# how vLLM, SGLang, TGI, llama.cpp and OpenAI word "this prompt does not fit"
_LENGTH_MESSAGE = re.compile(
    r"context[ _]length|maximum context|context size|context window|too long|too many tokens"
    r"|must be <=|exceeds? the (available|maximum)",
    re.IGNORECASE,
)


class EngineRequestError(Exception):
    """The server refused a request in a way retrying cannot fix (bad model name, bad params)."""


class ServerUnavailable(EngineRequestError):
    """The server did not answer usably (connection, timeout, 5xx, an invalid reply) through its retries:
    a fleet sends the request to another server (rsynth.engines.fleet); a lone engine stops the run with it."""


class InvalidReply(ServerUnavailable):
    """A 200 reply that fails `reply_problem` through the retries: never returned or cached; a fleet
    trusts that server with nothing until a probe takes it back."""


# headers sent with the requests of the current task, on top of the client's (a fleet's X-Session-ID)
REQUEST_HEADERS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "rsynth_request_headers", default=None
)


class RequestTooLong(EngineRequestError):
    """The server refused one request as longer than the model's context: that row's error, not the run's."""


def is_length_error(status: int, message: str) -> bool:
    """Whether an HTTP error answer means "prompt too long" (a per-request error row) rather than a
    mistake in the command (bad model name, bad params), which stops the run."""
    return status in (400, 413, 422) and bool(_LENGTH_MESSAGE.search(message))


class OpenAIEngine(Engine):
    name = "openai"
    request_seeded = True  # every request carries its own content-derived seed

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key: str | None = None,
        concurrency: int = 32,
        timeout: float = 600.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        retry_after_cap: float = RETRY_AFTER_CAP,
        failover_after: int | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        super().__init__(model)
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.max_retries = max_retries
        # attempts at a server that cannot be reached or believed before giving up on it (module docstring)
        self.failover_after = failover_after
        self.retry_after_cap = retry_after_cap
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # a node that vanished drops SYNs: without its own connect timeout that costs the whole request timeout
        self._timeouts = httpx.Timeout(timeout, connect=min(timeout, connect_timeout or timeout))
        self.client = httpx.Client(
            timeout=self._timeouts, headers=headers, limits=httpx.Limits(max_connections=concurrency)
        )
        self._pool = ThreadPoolExecutor(concurrency)
        self._headers, self._timeout = headers, timeout
        self._async: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient, asyncio.Semaphore] | None = None

    @property
    def max_batch_prompts(self) -> int:
        return self.concurrency * 4

    def identity(self) -> dict:
        return {"engine": self.name, "model": self.model, "base_url": self.base_url}

    def client_settings(self) -> dict:
        """How this client treats the server (not what it samples: no part of cache keys or run keys)."""
        return {"request timeout (s)": self._timeout, "max retries": self.max_retries}

    def _body(self, prompt: Prompt, params: SamplingParams) -> dict:
        messages = prompt.chat()
        body = {
            "model": self.model,
            "messages": messages,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": prompt_seed(params.seed, prompt),
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if prompt.assistant_prefix:
            body["messages"] = messages + [{"role": "assistant", "content": prompt.assistant_prefix}]
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body

    def _settle(
        self, url: str, attempt: int, body: dict, resp: httpx.Response | None, exc: Exception | None
    ) -> dict | float:
        """The reply's JSON once it passed `reply_problem`, else the seconds to wait before the next
        attempt, or the one-line error once retrying cannot help (a 4xx, or the last attempt)."""
        last = attempt == self.max_retries
        # unreachable or unbelievable: a fleet's member gives up sooner (module docstring)
        gone = last or (self.failover_after is not None and attempt + 1 >= self.failover_after)
        tries = f"after {attempt + 1} attempt{'s' if attempt else ''}"
        if exc is not None:
            if gone:
                if isinstance(exc, httpx.ConnectTimeout):
                    raise ServerUnavailable(
                        f"{url}: no connection within {self._timeouts.connect:g}s {tries}"
                    ) from None
                if isinstance(exc, httpx.TimeoutException):
                    raise ServerUnavailable(
                        f"{url}: no reply within --request-timeout {self._timeout:g}s {tries}; "
                        "raise --request-timeout or --max-retries"
                    ) from None
                raise ServerUnavailable(f"{url}: {type(exc).__name__} {tries}: {exc}") from None
            return self._backoff(attempt)
        assert resp is not None
        if resp.status_code == 200:
            try:
                data = resp.json()
            except ValueError:
                data, problem = None, f"a body that is not JSON: {_snippet(resp.text)}"
            else:
                problem = reply_problem(data, body["n"])
            if problem is None:
                return data
            if gone:
                raise InvalidReply(
                    f"{url}: invalid reply {tries}: {problem}; nothing was cached, "
                    "re-run once the server answers correctly"
                )
            return self._backoff(attempt)
        if resp.status_code not in RETRY_STATUS or last:
            message = _server_message(resp)
            error = RequestTooLong if is_length_error(resp.status_code, message) else EngineRequestError
            error = ServerUnavailable if resp.status_code in RETRY_STATUS else error
            raise error(f"{url}: HTTP {resp.status_code}: {message}")
        wait = retry_after(resp.headers.get("retry-after"))
        return self._backoff(attempt) if wait is None else min(wait, self.retry_after_cap)

    def _backoff(self, attempt: int) -> float:
        return self.backoff * (2**attempt) * (0.5 + random.random())

    def _post(self, body: dict) -> dict:
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            try:
                resp = self.client.post(url, json=body)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                data = self._settle(url, attempt, body, None, exc)
            else:
                data = self._settle(url, attempt, body, resp, None)
            if isinstance(data, dict):
                return data
            time.sleep(data)
        raise AssertionError("unreachable")

    async def _apost(self, body: dict) -> dict:
        """POST with at most `concurrency` requests at the server; each holds its n sequences in flight."""
        client, slots = self._async_client()
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            async with slots:
                try:
                    with self.stats.in_flight.hold(body["n"]):
                        resp = await client.post(url, json=body, headers=REQUEST_HEADERS.get() or None)
                except (httpx.TransportError, httpx.TimeoutException) as exc:
                    data = self._settle(url, attempt, body, None, exc)
                else:
                    data = self._settle(url, attempt, body, resp, None)
            if isinstance(data, dict):
                return data
            await asyncio.sleep(data)  # a backing-off request frees its slot
        raise AssertionError("unreachable")

    def _async_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The async client and in-flight limit of the running loop (an AsyncClient is bound to one)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = httpx.AsyncClient(
                timeout=self._timeouts, headers=self._headers, limits=httpx.Limits(max_connections=self.concurrency)
            )
            self._async = (loop, client, asyncio.Semaphore(self.concurrency))
        return self._async[1], self._async[2]

    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        too_long = self.too_long([prompt])
        if too_long:
            raise PromptTooLong(too_long)
        try:
            data = await self._apost(self._body(prompt, params))
        except RequestTooLong as exc:  # that request's error row, not the run's
            raise PromptTooLong({0: f"too_long: {exc}"}) from None
        comps = self._parse(data)
        self.count([comps])
        return comps

    def can_start(self, sequences: int) -> bool:
        """A free `--concurrency` slot and nobody waiting for one: the server's own capacity is not
        known here, so `--concurrency` is taken as the user's statement of it."""
        return self._async is not None and not self._async[2].locked()

    def request_slots(self) -> int:
        return self.concurrency

    async def aclose(self) -> None:
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].aclose()
        self._async = None

    def _one(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        return self._parse(self._post(self._body(prompt, params)))

    def _parse(self, data: dict) -> list[Completion]:
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        texts = [(c.get("message") or {}).get("content") or c.get("text") or "" for c in choices]
        total = (data.get("usage") or {}).get("completion_tokens")
        # share the request's total by cumulative rounding so the parts add up to it exactly
        # (rounding each part on its own lost or invented tokens); all-empty texts share it evenly
        weights = [len(t) for t in texts] if any(texts) else [1] * len(texts)
        whole = sum(weights) or 1
        comps, cum, given = [], 0, 0
        for choice, text, weight in zip(choices, texts, weights):
            cum += weight
            if total is not None:
                upto = round(total * cum / whole)
                tokens, given = upto - given, upto
            else:
                tokens = len(text.split())
            comps.append(Completion(text=text, num_tokens=tokens, finish_reason=choice["finish_reason"]))
        return comps

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        def one(prompt: Prompt) -> list[Completion] | RequestTooLong:
            try:
                return self._one(prompt, params)
            except RequestTooLong as exc:
                return exc

        futures = [self._pool.submit(one, p) for p in prompts]
        try:
            results = [f.result() for f in futures]
        except BaseException:  # the run stops: requests not yet sent are not sent (nor waited for at close)
            for f in futures:
                f.cancel()
            raise
        refused = {i: f"too_long: {r}" for i, r in enumerate(results) if isinstance(r, RequestTooLong)}
        if refused:
            raise PromptTooLong(refused, {i: r for i, r in enumerate(results) if not isinstance(r, RequestTooLong)})
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()


def reply_problem(data: object, n: int) -> str | None:
    """What is wrong with a 200 reply to a request for `n` choices, or None when it can be used."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        return f"no `choices` list in {_snippet(data)}"
    choices = data["choices"]
    if len(choices) != n:
        return f"{len(choices)} choices for n={n}"
    for i, c in enumerate(choices):
        if not isinstance(c, dict):
            return f"choice {i} is not an object"
        text = (c.get("message") or {}).get("content") if isinstance(c.get("message"), dict) else c.get("text")
        if not isinstance(text, str):
            return f"choice {i} has no text"
        if not isinstance(c.get("finish_reason"), str) or not c["finish_reason"]:
            return f"choice {i} has no finish_reason"
    if sorted(c.get("index", i) for i, c in enumerate(choices)) != list(range(n)):
        return f"choice indexes are not 0..{n - 1}"
    return None


def retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _snippet(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _server_message(resp: httpx.Response) -> str:
    try:
        err = resp.json().get("error", resp.json())
        msg = err.get("message") if isinstance(err, dict) else err
        return str(msg)[:300]
    except ValueError:
        return resp.text[:300] or resp.reason_phrase
