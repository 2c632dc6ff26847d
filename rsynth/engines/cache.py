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

The cache trusts nothing it reads: an entry is returned only when it holds exactly the `n` well-formed
completions its request asked for (a short reply stored by an older rsynth, a hand-edited row); any
other entry is a miss and is replaced. The database is opened lazily, on the first lookup, so an
output directory that is already complete answers without touching it; a file that is not a
readable SQLite database is moved aside (`cache.sqlite.damaged-N`) with one warning line, and the
run continues with a fresh cache: only completions not yet in the output are sampled again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        self._conn: sqlite3.Connection | None = None  # opened on first use (see the module docstring)
        self.moved_aside: Path | None = None
        self._lock = threading.RLock()
        self._in_flight: dict[str, asyncio.Future] = {}

    @property
    def _db(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._conn = _open(self.path)
                except sqlite3.OperationalError as exc:  # no permission, locked, read-only: the user's to fix
                    raise OutputError(f"cannot open the completion cache {self.path}: {exc}") from None
                except sqlite3.DatabaseError as exc:  # garbage, truncated, not a database
                    self._move_aside(exc)
                    self._conn = _open(self.path)
            return self._conn

    def _move_aside(self, exc: Exception) -> None:
        """Rename a damaged database (and its WAL files) out of the way and say so in one line."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        n = 1
        while self.path.with_name(f"{self.path.name}.damaged-{n}").exists():
            n += 1
        aside = self.path.with_name(f"{self.path.name}.damaged-{n}")
        try:
            self.path.rename(aside)
            for extra in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + extra)
                if side.exists():
                    side.rename(aside.with_name(aside.name + extra))
        except OSError as err:
            raise OutputError(
                f"the completion cache {self.path} is damaged ({exc}) and cannot be moved aside "
                f"({err.strerror or err}); move or delete it, then re-run"
            ) from None
        self.moved_aside = aside
        sys.stderr.write(
            f"warning: the completion cache {self.path} is damaged ({exc}); moved it to {aside.name} and "
            "continuing with a fresh cache (rows already in the output are kept; "
            "only missing ones are sampled)\n"
        )

    def check(self) -> None:
        """Open the database now (moving a damaged one aside), for callers that want the warning early."""
        self._db  # noqa: B018 - the property opens it

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

    def request_slots(self) -> int | None:
        return self.inner.request_slots()

    def key(self, prompt: Prompt, params: SamplingParams) -> str:
        payload = json.dumps(
            [
                self.inner.identity(),
                params.n,
                params.temperature,
                params.top_p,
                params.max_new_tokens,
                params.seed,
                list(params.stop),
                prompt.key(),
            ],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def _lookup(self, keys: list[str], n: int) -> dict[str, list[Completion]]:
        """The stored entries of `keys` that hold exactly `n` well-formed completions (others are misses)."""
        found: dict[str, list[Completion]] = {}
        with self._lock:
            try:
                rows = self._select(keys)
            except sqlite3.OperationalError as exc:
                raise OutputError(f"cannot read the completion cache {self.path}: {exc}") from None
            except sqlite3.DatabaseError as exc:  # damage found past the header, mid-run
                self._move_aside(exc)
                rows = []
        for k, v in rows:
            comps = _entry(v, n)
            if comps is not None:
                found[k] = comps
        return found

    def _select(self, keys: list[str]) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            rows += self._db.execute(f"SELECT key, value FROM completions WHERE key IN ({marks})", part).fetchall()
        return rows

    def _store(self, items: list[tuple[str, list[Completion]]], n: int, *, recover: bool = True) -> None:
        """Commit `items`; an entry that is not exactly `n` completions is never stored (it would be
        replayed by every later run)."""
        rows = [(k, json.dumps([c.as_dict() for c in comps])) for k, comps in items if len(comps) == n]
        if not rows:
            return
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN")
                db.executemany("INSERT OR REPLACE INTO completions VALUES (?, ?)", rows)
                db.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # "database or disk is full", "readonly database"
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise OutputError(f"cannot write the completion cache {self.path}: {exc}") from None
            except sqlite3.DatabaseError as exc:  # damaged under us: keep going with a fresh file (once)
                if not recover:
                    raise OutputError(f"cannot write the completion cache {self.path}: {exc}") from None
                self._move_aside(exc)
                self._store(items, n, recover=False)

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        raise NotImplementedError  # generate() is overridden: cache hits must not count as engine work

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        keys = [self.key(p, params) for p in prompts]
        found = self._lookup(keys, params.n)
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
                raise self._too_long(exc, list(todo), keys, part, params.n) from None
            fresh = list(zip(todo.keys(), results))
            self._store(fresh, params.n)
            found.update(fresh)
        return [found[k] for k in keys]

    def _too_long(self, exc: PromptTooLong, sent: list[str], keys: list[str], part: range, n: int) -> PromptTooLong:
        """Keep what the engine answered for the other prompts; re-aim the reasons at the caller's positions."""
        self._store([(sent[j], comps) for j, comps in exc.done.items()], n)
        bad = {sent[j]: reason for j, reason in exc.reasons.items()}
        return PromptTooLong({i: bad[keys[i]] for i in part if keys[i] in bad})

    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        key = self.key(prompt, params)
        shared = self._in_flight.get(key)
        if shared is not None:
            self.hits += 1
            return await asyncio.shield(shared)
        found = self._lookup([key], params.n)
        if key in found:
            self.hits += 1
            return found[key]
        self.misses += 1
        future = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            comps = await self.inner.agenerate(prompt, params)
            self._store([(key, comps)], params.n)
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

    def client_settings(self) -> dict:
        return self.inner.client_settings()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self.inner.close()


def _open(path: Path) -> sqlite3.Connection:
    """Connect and prove the file is a readable cache database (raises sqlite3.DatabaseError if not)."""
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        (verdict,) = db.execute("PRAGMA quick_check(1)").fetchone()
        if verdict != "ok":
            raise sqlite3.DatabaseError(str(verdict).splitlines()[0])
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _entry(value: str, n: int) -> list[Completion] | None:
    """A stored entry as completions when it is exactly `n` well-formed ones, else None (a miss)."""
    try:
        items = json.loads(value)
        comps = [Completion(**c) for c in items] if isinstance(items, list) else []
    except (ValueError, TypeError):
        return None
    ok = len(comps) == n and all(
        isinstance(c.text, str)
        and isinstance(c.finish_reason, str)
        and c.finish_reason
        and isinstance(c.num_tokens, int)
        for c in comps
    )
    return comps if ok else None


def usage(engine: Engine) -> dict[str, int]:
    """What this process has asked of `engine`: prompts sent to the model, prompts answered from the
    completion cache, and completions the model generated (cached ones are not generated again)."""
    inner = getattr(engine, "inner", engine)
    return {
        "engine prompts sent": getattr(engine, "misses", engine.stats.prompts),
        "prompts served from cache": getattr(engine, "hits", 0),
        "completions generated": engine.stats.completions,
        **(inner.server_usage() if hasattr(inner, "server_usage") else {}),
    }  # a fleet's per-server counters


def usage_since(engine: Engine, before: dict[str, int]) -> dict[str, Any]:
    """`usage` since `before` was taken, as the "... this run" figures a stage reports (a server that
    joined a fleet meanwhile counts from zero), and the client settings the run used (a server
    engine's --request-timeout and --max-retries)."""
    from rsynth.engines.fleet import usage_rates

    delta = {key: value - before.get(key, 0) for key, value in usage(engine).items()}
    return {
        **{f"{key} this run": value for key, value in delta.items()},
        **usage_rates(delta),
        **engine.client_settings(),
    }
