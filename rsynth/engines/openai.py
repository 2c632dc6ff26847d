"""Engine for any OpenAI-compatible server (vllm serve, SGLang, TGI, llama.cpp server).

Many requests are kept in flight (bounded by `concurrency`) so the server can batch them; one
request per prompt carries `n`, so k rollouts from a prefix are one request. Transient failures
(connection errors, timeouts, 408/409/429/5xx) are retried with exponential backoff; other 4xx
answers are the user's to fix and fail at once with the server's message.

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
import random
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from rsynth.engines.base import Completion, Engine, Prompt, PromptTooLong, SamplingParams, prompt_seed

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
# how vLLM, SGLang, TGI, llama.cpp and OpenAI word "this prompt does not fit"
_LENGTH_MESSAGE = re.compile(r"context[ _]length|maximum context|context size|context window|too long|too many tokens"
                             r"|must be <=|exceeds? the (available|maximum)", re.IGNORECASE)


class EngineRequestError(Exception):
    """The server refused a request in a way retrying cannot fix (bad model name, bad params)."""


class ServerUnavailable(EngineRequestError):
    """The server did not answer (connection, timeout, 5xx) through all retries: a fleet sends the
    request to another server (rsynth.engines.fleet); a lone engine stops the run with it."""


# headers sent with the requests of the current task, on top of the client's (a fleet's X-Session-ID)
REQUEST_HEADERS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("rsynth_request_headers", default={})


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
    ) -> None:
        super().__init__(model)
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers, limits=httpx.Limits(max_connections=concurrency))
        self._pool = ThreadPoolExecutor(concurrency)
        self._headers, self._timeout = headers, timeout
        self._async: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient, asyncio.Semaphore] | None = None

    @property
    def max_batch_prompts(self) -> int:
        return self.concurrency * 4

    def identity(self) -> dict:
        return {"engine": self.name, "model": self.model, "base_url": self.base_url}

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

    def _settle(self, url: str, attempt: int, resp: httpx.Response | None, exc: Exception | None) -> dict | None:
        """The reply's JSON, None to retry, or the one-line error once retrying cannot help."""
        if exc is not None:
            if attempt == self.max_retries:
                raise ServerUnavailable(f"{url}: {type(exc).__name__} after {attempt + 1} attempts: {exc}") from None
            return None
        assert resp is not None
        if resp.status_code == 200:
            return resp.json()
        if resp.status_code not in RETRY_STATUS or attempt == self.max_retries:
            message = _server_message(resp)
            error = RequestTooLong if is_length_error(resp.status_code, message) else EngineRequestError
            error = ServerUnavailable if resp.status_code in RETRY_STATUS else error
            raise error(f"{url}: HTTP {resp.status_code}: {message}")
        return None

    def _backoff(self, attempt: int) -> float:
        return self.backoff * (2**attempt) * (0.5 + random.random())

    def _post(self, body: dict) -> dict:
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            try:
                resp = self.client.post(url, json=body)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                data = self._settle(url, attempt, None, exc)
            else:
                data = self._settle(url, attempt, resp, None)
            if data is not None:
                return data
            time.sleep(self._backoff(attempt))
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
                    data = self._settle(url, attempt, None, exc)
                else:
                    data = self._settle(url, attempt, resp, None)
            if data is not None:
                return data
            await asyncio.sleep(self._backoff(attempt))  # a backing-off request frees its slot
        raise AssertionError("unreachable")

    def _async_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The async client and in-flight limit of the running loop (an AsyncClient is bound to one)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = httpx.AsyncClient(timeout=self._timeout, headers=self._headers,
                                       limits=httpx.Limits(max_connections=self.concurrency))
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
            comps.append(Completion(text=text, num_tokens=tokens, finish_reason=choice.get("finish_reason") or "stop"))
        return comps

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        def one(prompt: Prompt) -> list[Completion] | RequestTooLong:
            try:
                return self._one(prompt, params)
            except RequestTooLong as exc:
                return exc

        results = list(self._pool.map(one, prompts))
        refused = {i: f"too_long: {r}" for i, r in enumerate(results) if isinstance(r, RequestTooLong)}
        if refused:
            raise PromptTooLong(refused, {i: r for i, r in enumerate(results) if not isinstance(r, RequestTooLong)})
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()


def _server_message(resp: httpx.Response) -> str:
    try:
        err = resp.json().get("error", resp.json())
        msg = err.get("message") if isinstance(err, dict) else err
        return str(msg)[:300]
    except ValueError:
        return resp.text[:300] or resp.reason_phrase
