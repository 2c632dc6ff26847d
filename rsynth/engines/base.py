"""The engine interface every generator and annotator talks to.

One call takes many prompts and a `SamplingParams` with `n`, and returns `n` completions per prompt.
Rollouts from one prefix are therefore one request with n=k, which vLLM serves with one prefill and
prefix caching; callers never repeat a prompt k times. Annotators never import a concrete engine.

`agenerate` is the asynchronous path: ONE request (prompt, n) awaited on its own, with many in flight
at once, so a continuous-batching server keeps its slots full (rsynth.stages.scheduler). Engines
whose completions depend only on (prompt, params) -- each request seeded from its own content --
set `request_seeded`; for them both paths give identical samples, whatever else is in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from rsynth.errors import PromptTooLong


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 512
    seed: int = 0
    stop: tuple[str, ...] = ()

    def with_n(self, n: int) -> SamplingParams:
        return SamplingParams(n, self.temperature, self.top_p, self.max_new_tokens, self.seed, self.stop)

    def provenance(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "n": self.n,
        }


@dataclass(frozen=True)
class Prompt:
    """A chat to answer, optionally with the start of the assistant's reply to continue.

    `assistant_prefix` is how rollouts resume a partial solution: the chat template is applied with a
    generation prompt and the prefix appended, so the model continues its own turn.
    """

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    assistant_prefix: str = ""
    # which requests a fleet keeps on one server (rsynth.engines.routing); "": the chat before the
    # assistant's turn. Not part of the request's identity (equality, cache keys).
    route: str = field(default="", compare=False)

    @classmethod
    def user(cls, content: str, *, system: str | None = None, assistant_prefix: str = "", route: str = "") -> Prompt:
        msgs = ((("system", system),) if system else ()) + (("user", content),)
        return cls(msgs, assistant_prefix, route)

    def key(self) -> str:
        return json.dumps([list(m) for m in self.messages] + [self.assistant_prefix], ensure_ascii=False)

    def chars(self) -> int:
        return sum(len(c) for _, c in self.messages) + len(self.assistant_prefix)

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass(frozen=True)
class Completion:
    text: str
    num_tokens: int
    finish_reason: str  # "stop" | "length"

    def as_dict(self) -> dict:
        return asdict(self)


def token_excess(tokenizer: Any, text: str, context: int | None) -> str | None:
    """The too_long reason when `text` has more tokens than `context`, else None. A text of at most
    `context` UTF-8 bytes cannot have more tokens than that (each token covers at least one byte),
    so ordinary prompts are never tokenized twice."""
    if not context or len(text.encode()) <= context:
        return None
    tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return f"too_long: prompt of {tokens} tokens exceeds the model's context of {context}" if tokens > context else None


class InFlight:
    """Time-weighted count of sequences the engine is working on (occupancy), safe across threads.

    Engines mark a request's n sequences from the moment the engine has it until its completions are
    back (`hold`); `summary` turns the time spent at each level since a `mark` into mean, p10 and the
    busy fraction (time with anything in flight). `clock` is replaceable: a simulated engine counts
    virtual seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.level = 0
        self._since = clock()
        self._time_at: dict[int, float] = {}  # level -> seconds spent there
        self._lock = threading.Lock()

    def change(self, delta: int) -> None:
        with self._lock:
            now = self.clock()
            self._time_at[self.level] = self._time_at.get(self.level, 0.0) + now - self._since
            self.level += delta
            self._since = now

    @contextmanager
    def hold(self, sequences: int) -> Iterator[None]:
        self.change(sequences)
        try:
            yield
        finally:
            self.change(-sequences)

    def mark(self) -> tuple[float, dict[int, float]]:
        self.change(0)
        return self._since, dict(self._time_at)

    def summary(self, mark: tuple[float, dict[int, float]]) -> dict[str, float]:
        """Mean and p10 sequences in flight, and the busy fraction, since `mark`."""
        self.change(0)
        start, before = mark
        spent = {lv: t - before.get(lv, 0.0) for lv, t in self._time_at.items()}
        total = sum(spent.values())
        if total <= 0:
            return {"mean": 0.0, "p10": 0.0, "busy": 0.0}
        acc, p10 = 0.0, 0
        for lv in sorted(spent):
            acc += spent[lv]
            if acc >= 0.1 * total:
                p10 = lv
                break
        mean = sum(lv * t for lv, t in spent.items()) / total
        return {"mean": mean, "p10": float(p10), "busy": 1.0 - spent.get(0, 0.0) / total}


@dataclass
class EngineStats:
    """Counters every engine keeps, so benchmarks can report busy time and tokens without wrappers."""

    calls: int = 0
    prompts: int = 0
    completions: int = 0
    generated_tokens: int = 0
    busy_seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)
    in_flight: InFlight = field(default_factory=InFlight)


DEFAULT_MAX_INPUT_CHARS = 200_000  # a problem longer than this is a data error, not a prompt
_max_input_chars = DEFAULT_MAX_INPUT_CHARS


def set_max_input_chars(limit: int) -> None:
    """The `--max-input-chars` guard for engines made from now on (0: none); a process-wide CLI setting."""
    global _max_input_chars
    _max_input_chars = limit


class Engine(ABC):
    name: str = "engine"
    # True when a request's completions are a pure function of (prompt, params): the asynchronous
    # scheduler then gives exactly the lock-step rows, so it is this engine's default
    request_seeded: bool = False

    def __init__(self, model: str) -> None:
        self.model = model
        self.stats = EngineStats()
        self.max_input_chars = _max_input_chars  # 0: no guard
        self._serial: ThreadPoolExecutor | None = None

    @property
    def max_batch_prompts(self) -> int:
        """How many prompts one `generate` call should carry (callers chunk by this)."""
        return 64

    @abstractmethod
    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]: ...

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        if not prompts:
            return []
        too_long = self.too_long(prompts)
        if too_long:
            raise PromptTooLong(too_long)
        t0 = time.perf_counter()
        try:
            with self.stats.in_flight.hold(len(prompts) * params.n):
                out = self._generate(prompts, params)
        except PromptTooLong as exc:  # what the server answered for the other prompts was still work
            self.stats.busy_seconds += time.perf_counter() - t0
            self.count(list(exc.done.values()))
            raise
        self.stats.busy_seconds += time.perf_counter() - t0
        self.count(out)
        return out

    def count(self, out: list[list[Completion]]) -> None:
        """Add one call's requests to the counters (busy time is the caller's: async calls overlap)."""
        self.stats.calls += 1
        self.stats.prompts += len(out)
        self.stats.batch_sizes.append(len(out))
        for comps in out:
            self.stats.completions += len(comps)
            self.stats.generated_tokens += sum(c.num_tokens for c in comps)

    def too_long(self, prompts: Sequence[Prompt]) -> dict[int, str]:
        """Positions of prompts that cannot be served, with the reason: over `max_input_chars`, or over
        the model's context (`context_excess`, for engines that know their tokenizer)."""
        reasons = {}
        for i, p in enumerate(prompts):
            chars = p.chars()
            if self.max_input_chars and chars > self.max_input_chars:
                reasons[i] = f"too_long: prompt of {chars} characters exceeds --max-input-chars {self.max_input_chars}"
            elif (excess := self.context_excess(p)) is not None:
                reasons[i] = excess
        return reasons

    def context_excess(self, prompt: Prompt) -> str | None:
        """The too_long reason when `prompt` exceeds the model's context; engines without a local
        tokenizer (openai) learn it from the server's answer instead."""
        return None

    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        """The n completions of one request, awaited while other requests are in flight.

        Default (lock-step engines such as hf): the batched path, one request per call, on one worker
        thread in submission order -- the event loop never blocks and the samples of a request depend
        only on (prompt, params), because the batch it is seeded from is that request alone.
        """
        if self._serial is None:
            self._serial = ThreadPoolExecutor(1, thread_name_prefix=f"rsynth-{self.name}")
        return await asyncio.get_running_loop().run_in_executor(
            self._serial, lambda: self.generate([prompt], params)[0]
        )

    def can_start(self, sequences: int) -> bool:
        """Whether a request of `sequences` would start at once, delaying nothing already submitted.

        The asynchronous scheduler only prefetches likely requests into such otherwise idle slots.
        False where the engine cannot tell (hf: it runs one request at a time anyway)."""
        return False

    def request_slots(self) -> int | None:
        """How many requests the engine serves at once, where it knows (a fleet: the slots of its servers
        that are up), else None. The asynchronous scheduler lets live searches grow to this many while
        `can_start` reports idle slots: a bisecting search keeps about one request in flight, so a fleet
        twice as large needs twice the live searches, and no fixed multiple of --max-live-searches fits."""
        return None

    async def aclose(self) -> None:
        """Release what the asynchronous path bound to the running event loop (HTTP clients)."""

    def identity(self) -> dict:
        """What, besides the prompt and params, determines this engine's output (for cache keys)."""
        return {"engine": self.name, "model": self.model}

    def client_settings(self) -> dict:
        """How this engine talks to a server (timeouts, retries), recorded with a run's figures;
        unlike `identity`, no part of cache or run keys: changing them changes no sample."""
        return {}

    def close(self) -> None:
        """Release model memory or connections."""
        if self._serial is not None:
            self._serial.shutdown(wait=True)
            self._serial = None


def batch_seed(seed: int, prompts: Sequence[Prompt], params: SamplingParams) -> int:
    """A seed derived from a batch's content, so a batch's samples do not depend on call history."""
    h = hashlib.sha256(
        json.dumps([seed, params.temperature, params.top_p, params.n, [p.key() for p in prompts]]).encode()
    )
    return int.from_bytes(h.digest()[:4], "little")


def prompt_seed(seed: int, prompt: Prompt) -> int:
    h = hashlib.sha256(json.dumps([seed, prompt.key()]).encode())
    return int.from_bytes(h.digest()[:4], "little")
