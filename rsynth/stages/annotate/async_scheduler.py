"""The event-driven annotate-prm scheduler: every search advances as soon as its own rollouts are back.

The lock-step `RoundScheduler` (rsynth.stages.annotate.lockstep) sends a round of requests, waits for the slowest sequence, verifies,
and only then sends the next round; a continuous-batching engine sits idle in between. Here each
search is an asyncio task:

    pull question -> search yields requests -> engine.agenerate (one per request, n=k, all k share
    the engine) -> verify (worker thread, batched) -> send rollouts -> next yield ... -> rows

- up to `max_live_searches` searches are live; a finished one is replaced by the next input at once
  (no batch barrier), so the engine always has every live search's request;
- verification runs on one worker thread that takes whatever is queued as one `verify_batch` (the
  math verifier's hard-timeout process pool, `--verify-workers` processes), so it overlaps
  generation and never blocks the event loop;
- each finished search's rows are yielded at once (`stream`, the runner's `Work.stream`), and the
  runner's reorder buffer writes them in input order;
- prefetch: a search's batch carries the requests it will probably make next (`Batch.likely`: both
  possible next bisection probes, an estimate's next chunk). When the engine says a request would
  start at once without delaying anything (`Engine.can_start`), such hints are sent early, oldest
  search first; when the search then asks for one, it gets the request already running or done.
  Bisection is sequential, so without this a search has one request in flight, and a large engine
  with few live searches idles. A hint the search never asks for costs its completions (counted as
  prefetched but unused); rows are unchanged, because a reply depends only on (prompt, params).

Identical rows: a search is a pure function of its replies, and a reply is a pure function of
(prompt, params) on request-seeded engines (vllm, openai) and of the verifier's verdicts, so this
scheduler and the lock-step one write the same rows, and a killed run resumes to the same output
(completions come back from the cache).
"""

from __future__ import annotations

import asyncio
import heapq
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from rsynth.annotators import Rollout, RolloutRequest, SearchResult
from rsynth.data.readers import RowError
from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams
from rsynth.errors import PromptTooLong
from rsynth.runner.loop import Item, Rows
from rsynth.stages.annotate.rollouts import AnnotateConfig, RolloutService, Task, draw_params
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem

SCHEDULERS = ("auto", "async", "lockstep")


def pick_scheduler(name: str, engine: Engine) -> str:
    """`auto`: async where the engine's requests are seeded one by one (identical rows), else lock-step."""
    if name not in SCHEDULERS:
        raise ValueError(f"--scheduler {name!r}: expected one of {', '.join(SCHEDULERS)}")
    if name == "auto":
        return "async" if engine.request_seeded else "lockstep"
    return name


class SerialVerifier(Verifier):
    """A verifier shared by the event loop's worker thread and input validation: one batch at a time
    (a process pool's `map` is not re-entrant)."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.name, self.version, self.inline = inner.name, inner.version, inner.inline
        self._lock = threading.Lock()

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        with self._lock:
            return self.inner.verify_batch(items)

    def close(self) -> None:
        self.inner.close()


class VerifyQueue:
    """Verify on one worker thread, taking everything queued meanwhile as one batch (an `inline`
    verifier, cheap and pure, is called directly)."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self._queue: list[tuple[VerifyItem, asyncio.Future]] = []
        self._draining = False
        self._drainer: asyncio.Task | None = None  # referenced: the loop keeps only weak references to tasks
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="rsynth-verify")

    async def verify(self, items: list[VerifyItem]) -> list[Verdict]:
        if self.verifier.inline:
            return self.verifier.verify_batch(items)
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        self._queue.extend(zip(items, futures))
        if not self._draining:
            self._draining = True
            self._drainer = loop.create_task(self._drain())
        return list(await asyncio.gather(*futures))

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    verdicts = await loop.run_in_executor(
                        self._thread, self.verifier.verify_batch, [it for it, _ in batch]
                    )
                except Exception as exc:  # the searches waiting on this batch fail with it
                    verdicts = None
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                for i, (_, fut) in enumerate(batch):
                    if verdicts is not None and not fut.done():
                        fut.set_result(verdicts[i])
        finally:
            self._draining = False

    def close(self) -> None:
        self._thread.shutdown(wait=True)


class AsyncScheduler(RolloutService):
    """Runs searches as asyncio tasks over `engine.agenerate`; see the module docstring.

    The search factory, prompts, verdict cache and counters come from `RolloutService`, as the
    lock-step scheduler's do, so both build identical rollouts from identical completions.
    """

    def __init__(
        self,
        engine: Engine,
        verifier: Verifier,
        config: AnnotateConfig,
        *,
        max_live_searches: int = 256,
        prefetch: bool = False,
    ) -> None:
        super().__init__(engine, verifier, config)
        if max_live_searches < 1:
            raise ValueError("--max-live-searches must be >= 1")
        self.max_live = max_live_searches
        self.live = 0
        self.verify_queue = VerifyQueue(verifier)
        self._verdicts_pending: dict[tuple, asyncio.Future] = {}
        # prefetch is only sound where a reply is a pure function of the request (see module docstring)
        self.prefetch = prefetch and engine.request_seeded
        self._hints: dict[int, list[tuple[Prompt, SamplingParams]]] = {}  # live search -> its likely next requests
        self._fetched: dict[
            tuple[Prompt, SamplingParams], tuple[int, asyncio.Task]
        ] = {}  # request -> (search, engine call)
        self._reserved = 0  # sequences of prefetches created but not yet handed to the engine
        self._changed: asyncio.Event | None = None  # slots freed or a search now waits on the engine: drive looks again
        self._input_open = True
        self._at_engine: dict[int, int] = {}  # live search -> its requests the engine is working on
        self._first_k = config.omegaprm.k0 if config.method == "omegaprm" else config.math_shepherd.n
        self.stats.update(
            prefetched=0, prefetched_completions=0, prefetch_used=0, prefetched_completions_used=0, live_max=0
        )

    def status(self) -> str:
        """The progress line's live part: what the engine is working on right now."""
        return f"{self.engine.stats.in_flight.level} seqs in flight, {self.live} searches live"

    def stream(
        self, items: Iterator[Item], to_rows: Callable[[Task, SearchResult], Rows]
    ) -> Iterator[tuple[int, Rows]]:
        """Search every item; yield (input index, rows) the moment each search finishes (any order).

        The event loop runs in this thread, between yields, so items are read and rows handed back
        on the caller's thread. Ctrl-C lands here and propagates after the loop is shut down."""
        finished: list[tuple[int, Rows]] = []
        ready = asyncio.Event()

        def emit(result: tuple[int, Rows]) -> None:
            finished.append(result)
            ready.set()

        loop = asyncio.new_event_loop()
        main = loop.create_task(self.drive(items, emit, to_rows))
        try:
            while not main.done():
                loop.run_until_complete(_first_of(main, ready))
                yield from finished
                finished.clear()
            main.result()
        finally:
            _shut_down(loop)
            self.verify_queue.close()

    async def drive(
        self,
        items: Iterator[Item],
        emit: Callable[[tuple[int, Rows]], None],
        to_rows: Callable[[Task, SearchResult], Rows],
    ) -> None:
        """The event loop's main task: keep `max_live` searches going until the input runs out, and
        more while the engine says it has idle slots (`Engine.can_start`), checked each time a
        request comes back: bisection keeps one request per search in flight, so a large engine needs
        more live searches than a small one. The bound is 4x `max_live` or the engine's
        `request_slots` (a fleet: every server's slots), whichever is larger, so live searches grow
        with the fleet without tuning.

        Finished searches ahead of the oldest live one wait in the writer's reorder buffer; they are
        capped by the same bound (memory). A search that fails (the engine's one-line error) cancels
        the rest and propagates.

        A wake costs O(log live), not O(live): each search reports its own end (a done callback that
        sets `_changed`), and the oldest live index comes from a heap. Awaiting every live task again
        on each wake (`asyncio.wait([*live])` adds and removes a callback on each) made a fleet's
        thousands of live searches cost quadratic time."""
        live: dict[asyncio.Task, int] = {}
        live_indexes: set[int] = set()
        oldest: list[int] = []  # live input indexes, a heap; an entry that is no longer live is dropped on top
        ended: deque[asyncio.Task] = deque()  # searches finished since drive last looked, in the order they finished
        done_ahead: list[int] = []  # finished input indexes, a heap; those above the oldest live one are held
        source = iter(items)
        exhausted = False
        self._changed = changed = asyncio.Event()  # bound to this stream's loop

        def search_ended(t: asyncio.Task) -> None:
            ended.append(t)
            changed.set()

        try:
            while True:
                while ended:
                    t = ended.popleft()
                    index = live.pop(t)
                    live_indexes.discard(index)
                    heapq.heappush(done_ahead, index)
                    t.result()
                while oldest and oldest[0] not in live_indexes:
                    heapq.heappop(oldest)
                while done_ahead and (not oldest or done_ahead[0] < oldest[0]):
                    heapq.heappop(done_ahead)
                extra = 0  # searches admitted for idle slots this turn: their first requests are not sent yet
                cap = max(4 * self.max_live, self.engine.request_slots() or 0)  # servers join and leave
                while not exhausted and len(done_ahead) < cap and len(live) < cap:
                    if len(live) >= self.max_live:
                        if len(self._at_engine) < len(live) or not self.engine.can_start((extra + 1) * self._first_k):
                            break  # a search between requests is about to fill the slot itself
                        extra += 1
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                    else:
                        t = asyncio.create_task(self._search(item, emit, to_rows))
                        t.add_done_callback(search_ended)
                        live[t] = item.index
                        live_indexes.add(item.index)
                        heapq.heappush(oldest, item.index)
                self.live = len(live)
                self.stats["live_max"] = max(self.stats["live_max"], self.live)
                self._input_open = not exhausted and len(live) < cap  # new questions come before prefetches
                if not live:
                    return
                changed.clear()
                await changed.wait()
        finally:
            for t in live:
                t.remove_done_callback(search_ended)
                t.cancel()
            await asyncio.gather(*live, return_exceptions=True)
            await self.engine.aclose()

    async def _search(
        self, item: Item, emit: Callable[[tuple[int, Rows]], None], to_rows: Callable[[Task, SearchResult], Rows]
    ) -> None:
        task: Task = item.value
        search = self.search(task, self.config.params.seed)
        replies = None
        try:
            while True:
                try:
                    requests = next(search) if replies is None else search.send(replies)
                except StopIteration as stop:
                    emit((item.index, to_rows(task, stop.value)))
                    return
                if self.prefetch:  # built once per batch: `_pump` runs on every request's return
                    self._hints[item.index] = [self._call(task, r) for r in getattr(requests, "likely", ())]
                    self._pump()
                try:
                    replies = list(await asyncio.gather(*(self._serve_one(task, r, item.index) for r in requests)))
                except PromptTooLong as exc:  # that question's error row; the other searches go on
                    emit((item.index, [("errors", RowError.of(item.record, str(exc)).as_row())]))
                    return
        finally:
            self._forget(item.index)

    def _call(self, task: Task, request: RolloutRequest) -> tuple[Prompt, SamplingParams]:
        return self.prompt(task, request.prefix), draw_params(self.config.params, request.k, request.draw)

    def _pump(self) -> None:
        """Send likely requests, oldest live search first, while the engine has idle slots for them."""
        if not self.prefetch or self._input_open:
            return
        loop = asyncio.get_running_loop()
        for index in sorted(self._hints):
            for call in self._hints[index]:
                if call in self._fetched:
                    continue
                k = call[1].n
                if not self.engine.can_start(self._reserved + k):
                    return
                self._reserved += k
                fetch = loop.create_task(self._fetch(*call))
                fetch.add_done_callback(self._fetch_done)
                self._fetched[call] = (index, fetch)
                self.stats["prefetched"] += 1
                self.stats["prefetched_completions"] += k

    async def _fetch(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        self._reserved -= params.n  # the engine counts it from here on (engines mark requests before awaiting)
        return await self.engine.agenerate(prompt, params)

    def _fetch_done(self, fetch: asyncio.Task) -> None:
        if not fetch.cancelled():
            fetch.exception()  # retrieved: an unused prefetch's failure is nobody's; a used one re-raises to its search
            self._request_back()

    def _wake(self) -> None:
        """Engine slots or waiting searches changed: `drive` looks again at admitting a question
        (only while there are questions to admit: the drain needs no wake-ups)."""
        if self._changed is not None and self._input_open:
            self._changed.set()

    def _request_back(self) -> None:
        """Slots were freed: wake `drive` and prefetch into what is left."""
        self._wake()
        self._pump()

    def _forget(self, index: int) -> None:
        """A finished search's hints and unused prefetches are dropped (still running ones finish and
        land in the completion cache)."""
        self._hints.pop(index, None)
        for call in [c for c, (i, _) in self._fetched.items() if i == index]:
            del self._fetched[call]

    async def _serve_one(self, task: Task, request: RolloutRequest, index: int) -> list[Rollout]:
        prompt, params = call = self._call(task, request)
        fetched = self._fetched.pop(call, None)
        self._at_engine[index] = self._at_engine.get(index, 0) + 1
        self._wake()
        try:
            if fetched is not None:
                self.stats["prefetch_used"] += 1
                self.stats["prefetched_completions_used"] += request.k
                completions = await fetched[1]
            else:
                completions = await self.engine.agenerate(prompt, params)
        finally:
            self._at_engine[index] -= 1
            if not self._at_engine[index]:
                del self._at_engine[index]
        self._request_back()
        self.stats["requests"] += 1
        self.stats["completions"] += request.k
        parsed = [self.parse(task.answer, request.prefix, c) for c in completions]
        self.stats["no_answer"] += sum(key is None for key, *_ in parsed)
        await self._verdicts({key: item for key, item, *_ in parsed if key is not None})
        return [self.rollout(*p) for p in parsed]

    async def _verdicts(self, items: dict[tuple, VerifyItem]) -> None:
        """Fill the verdict cache for `items`; each distinct item is verified once, even when two
        searches ask for it while its verification is running."""
        new = sorted((k for k in items if k not in self.verdict_cache and k not in self._verdicts_pending), key=str)
        if new:
            loop = asyncio.get_running_loop()
            for k in new:
                self._verdicts_pending[k] = loop.create_future()
            try:
                verdicts = await self.verify_queue.verify([items[k] for k in new])
            finally:
                for k in new:
                    self._verdicts_pending.pop(k).cancel()
            self.stats["verifications"] += len(new)
            for k, v in zip(new, verdicts):
                self.verdict_cache[k] = (v.ok, v.status)
        waits = [
            self._verdicts_pending[k] for k in items if k not in self.verdict_cache and k in self._verdicts_pending
        ]
        if waits:
            await asyncio.wait(waits)


async def _first_of(main: asyncio.Task, ready: asyncio.Event) -> None:
    """Run the loop until a search has finished (`ready`) or everything has (`main`)."""
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait([main, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    ready.clear()


def _shut_down(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still running on `loop` and close it (what `asyncio.run` does on its way out)."""
    pending = asyncio.all_tasks(loop)
    for t in pending:
        t.cancel()
    try:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    except BaseException:  # noqa: BLE001 -- a second Ctrl-C: the interrupt already propagating wins
        pass
    loop.close()
