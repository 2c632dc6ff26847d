"""A durable completion cache in front of any engine, so no finished generation is paid for twice.

Entries are keyed by a content hash of (engine identity, model, sampling params, seed, prompt) and
stored in SQLite, committed after every engine call: a run killed at any moment loses at most the
call in flight. Requests are cut into chunks at fixed positions of the caller's list and a chunk
is either wholly cached or sent whole, so a resumed run sends the engine exactly the batches the
interrupted run would have sent: the hf engine seeds each batch from its content, and this keeps its
samples identical whether or not the run was interrupted.

The asynchronous path (`agenerate`) looks one request up, and stores its completions the moment they
arrive, one commit per request: kill -9 loses only requests still in flight. Identical requests in
flight at once share one engine request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from rsynth.data.shards import OutputError
from rsynth.engines.base import Completion, Engine, Prompt, PromptTooLong, SamplingParams


class CachedEngine(Engine):
    def __init__(self, engine: Engine, path: Path | str) -> None:
        super().__init__(engine.model)
        self.inner = engine
        self.name = engine.name
        self.stats = engine.stats  # engine-side counters; cache hits do not touch them
        self.hits = 0
        self.misses = 0
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._lock = threading.Lock()
        self._in_flight: dict[str, asyncio.Future] = {}

    @property
    def max_batch_prompts(self) -> int:
        return self.inner.max_batch_prompts

    @property
    def request_seeded(self) -> bool:  # type: ignore[override]
        return self.inner.request_seeded

    def identity(self) -> dict:
        return self.inner.identity()

    def can_start(self, sequences: int) -> bool:
        return self.inner.can_start(sequences)

    def key(self, prompt: Prompt, params: SamplingParams) -> str:
        payload = json.dumps(
            [self.inner.identity(), params.n, params.temperature, params.top_p, params.max_new_tokens, params.seed,
             list(params.stop), prompt.key()],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def _lookup(self, keys: list[str]) -> dict[str, list[Completion]]:
        found: dict[str, list[Completion]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                rows = self._db.execute(
                    f"SELECT key, value FROM completions WHERE key IN ({','.join('?' * len(part))})", part
                ).fetchall()
                for k, v in rows:
                    found[k] = [Completion(**c) for c in json.loads(v)]
        return found

    def _store(self, items: list[tuple[str, list[Completion]]]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO completions VALUES (?, ?)",
                    [(k, json.dumps([c.as_dict() for c in comps])) for k, comps in items],
                )
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # "database or disk is full", "readonly database"
                raise OutputError(f"cannot write the completion cache {self.path}: {exc}") from None

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        raise NotImplementedError  # generate() is overridden: cache hits must not count as engine work

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        keys = [self.key(p, params) for p in prompts]
        found = self._lookup(keys)
        chunk = max(1, self.inner.max_batch_prompts)
        for start in range(0, len(prompts), chunk):
            part = range(start, min(start + chunk, len(prompts)))
            if all(keys[i] in found for i in part):
                self.hits += len(part)
                continue
            todo: dict[str, Prompt] = {}
            for i in part:
                todo.setdefault(keys[i], prompts[i])  # identical prompts in one chunk are one request
            self.misses += len(todo)
            try:
                results = self.inner.generate(list(todo.values()), params)
            except PromptTooLong as exc:
                raise self._too_long(exc, list(todo), keys, part) from None
            fresh = list(zip(todo.keys(), results))
            self._store(fresh)
            found.update(fresh)
        return [found[k] for k in keys]

    def _too_long(self, exc: PromptTooLong, sent: list[str], keys: list[str], part: range) -> PromptTooLong:
        """Keep what the engine answered for the other prompts; re-aim the reasons at the caller's positions."""
        self._store([(sent[j], comps) for j, comps in exc.done.items()])
        bad = {sent[j]: reason for j, reason in exc.reasons.items()}
        return PromptTooLong({i: bad[keys[i]] for i in part if keys[i] in bad})
    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        key = self.key(prompt, params)
        shared = self._in_flight.get(key)
        if shared is not None:
            self.hits += 1
            return await asyncio.shield(shared)
        found = self._lookup([key])
        if key in found:
            self.hits += 1
            return found[key]
        self.misses += 1
        future = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            comps = await self.inner.agenerate(prompt, params)
            self._store([(key, comps)])
            future.set_result(comps)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: the waiters re-raise it, asyncio must not log it
            raise
        finally:
            del self._in_flight[key]
        return comps

    async def aclose(self) -> None:
        await self.inner.aclose()

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self.inner.close()


def usage(engine: Engine) -> dict[str, int]:
    """What this process has asked of `engine`: prompts sent to the model, prompts answered from the
    completion cache, and completions the model generated (cached ones are not generated again)."""
    inner = getattr(engine, "inner", engine)
    return {"engine prompts sent": getattr(engine, "misses", engine.stats.prompts),
            "prompts served from cache": getattr(engine, "hits", 0),
            "completions generated": engine.stats.completions,
            **(inner.server_usage() if hasattr(inner, "server_usage") else {})}  # a fleet's per-server counters


def usage_since(engine: Engine, before: dict[str, int]) -> dict[str, int]:
    """`usage` since `before` was taken, as the "... this run" figures a stage reports (a server that
    joined a fleet meanwhile counts from zero)."""
    from rsynth.engines.fleet import usage_rates

    delta = {key: value - before.get(key, 0) for key, value in usage(engine).items()}
    return {**{f"{key} this run": value for key, value in delta.items()}, **usage_rates(delta)}
