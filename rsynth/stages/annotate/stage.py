"""`annotate-prm`: drive many searches at once and serve all their rollout requests in one engine call.

Two schedulers (`--scheduler`): the lock-step `RoundScheduler` (lockstep.py, a batch `Work.process`),
and the event-driven `AsyncScheduler` (async_scheduler.py, a `Work.stream`; the default where the engine
seeds each request on its own: vllm, openai), which writes the same rows. This module reads problems or
given traces, turns each search's result into rows, and builds the `Stage` the runner executes.

Resume: completions are cached as they finish, and question batches sit at fixed input positions,
so a killed run replays its finished rounds from the cache (no engine call) and continues.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rsynth.annotators import GivenTrace, SearchResult
from rsynth.data.readers import SOURCE_REF, FieldSpec, Record, RowError
from rsynth.data.schema import ERROR_SCHEMA, QUESTION_SCHEMA, TRACE_SCHEMA, TREE_SCHEMA
from rsynth.engines.base import Engine
from rsynth.runner.loop import Item, Rows
from rsynth.runner.partition import Partition
from rsynth.runner.stage import Counts, Stage, Target, Work, execute
from rsynth.stages.annotate.async_scheduler import AsyncScheduler, SerialVerifier, pick_scheduler
from rsynth.stages.annotate.lockstep import RoundScheduler
from rsynth.stages.annotate.rollouts import AnnotateConfig, RolloutService, Task
from rsynth.stages.domains import RolloutChecker, make_checker, verdict_word
from rsynth.stages.problem import DEFAULT_INSTRUCTION, read_problem
from rsynth.stages.provenance import provenance
from rsynth.stages.run_key import run_key
from rsynth.verifiers.base import Verifier

__all__ = ["AnnotateConfig", "annotate_stage", "make_validator", "run_annotate"]

METHODS = ("omegaprm", "math-shepherd")
INPUT_KINDS = ("auto", "problems", "traces")

PROBLEM_FIELDS = [FieldSpec("problem", str), FieldSpec("answer", str), FieldSpec("id", str, required=False)]
TRACE_FIELDS = [*PROBLEM_FIELDS, FieldSpec("steps", list), FieldSpec("correct", bool, required=False)]


def _given_correct(data: dict[str, Any], view: dict[str, Any]) -> bool | None:
    if view.get("correct") is not None:
        return view["correct"]
    if isinstance(data.get("final_answer_correct"), bool):
        return data["final_answer_correct"]
    if isinstance(data.get("verdict"), str):
        return data["verdict"] in ("correct", "pass", "proved")
    return None


def make_validator(mapping: dict[str, str], kind: str, verifier: Verifier, checker: RolloutChecker | None = None):
    """Build the per-record validation for problems or traces (auto: traces when a steps column exists)."""
    checker = checker or make_checker("math", DEFAULT_INSTRUCTION, "auto")

    def validate(record: Record) -> Task | RowError:
        as_traces = kind == "traces" or (kind == "auto" and mapping.get("steps", "steps") in record.data)
        view = read_problem(record, mapping, TRACE_FIELDS if as_traces else PROBLEM_FIELDS)
        if isinstance(view, RowError):
            return view
        tid = view["id"]
        invalid = checker.invalid_reference(view["answer"])
        if invalid:
            return RowError(
                record.source,
                record.row,
                mapping.get("answer", "answer"),
                invalid,
                json.dumps(record.data, default=str)[:2000],
            )
        given = None
        if as_traces:
            steps = tuple(s for s in view["steps"] if s.strip())
            if not steps:
                return RowError(
                    record.source,
                    record.row,
                    mapping.get("steps", "steps"),
                    "trace has no steps",
                    json.dumps(record.data, default=str)[:2000],
                )
            correct = _given_correct(record.data, view)
            reason = record.data.get("finish_reason")  # a given generation cut at max tokens has no guessed answer
            check, answer = checker.check(view["answer"], steps, "", reason if isinstance(reason, str) else "stop")
            final = record.data.get("final_answer") or answer
            if correct is None:
                (verdict,) = verifier.verify_batch([check])
                correct = verdict.ok
            given = GivenTrace(steps, correct, final)
        return Task(tid, view["problem"], view["answer"], given, {**view["_extra"], SOURCE_REF: view[SOURCE_REF]})

    return validate


def result_rows(task: Task, result: SearchResult, config: AnnotateConfig, provenance: dict[str, Any]) -> Rows:
    """Trace rows (data), tree nodes (tree) and the per-question summary (questions) of one search."""
    rows: Rows = []
    join = config.checker().join
    root = next((n for n in result.nodes if not n.prefix_steps), None)
    for j, tr in enumerate(result.traces):
        tid = task.id if task.given is not None and j == 0 else f"{task.id}/{config.method}/{j}"
        rows.append(
            (
                "data",
                {
                    **{k: v for k, v in task.passthrough.items() if k not in ("steps",)},
                    "id": tid,
                    "problem_id": task.passthrough.get("problem_id") or task.id,
                    "domain": config.domain,
                    "problem": task.problem,
                    "reference_answer": task.answer,
                    "sample_index": j,
                    "completion": join(tr.steps),
                    "steps": list(tr.steps),
                    "final_answer": tr.final_answer,
                    "verdict": verdict_word(config.domain, tr.correct, tr.final_answer),
                    **(
                        _generation_record(task.passthrough)
                        if task.given is not None and j == 0
                        else {"num_tokens": None, "finish_reason": None}
                    ),
                    "pass_rate": root.mc if root is not None else None,
                    "provenance": provenance,
                    **tr.labels,
                },
            )
        )
    trace_ids = [(r["steps"], r["id"]) for _, r in rows]
    for node in result.nodes:
        rows.append(
            (
                "tree",
                {
                    "trace_id": _first_extending(trace_ids, node.prefix_steps),
                    "problem_id": task.id,
                    "question": task.problem,
                    "prefix_steps": list(node.prefix_steps),
                    "mc": node.mc,
                    "k": node.k,
                    "correct": node.correct,
                    "visits": node.visits,
                    "depth": node.depth,
                },
            )
        )
    rows.append(
        (
            "questions",
            {
                "problem_id": task.id,
                "input_id": task.id,
                "problem": task.problem,
                "reference_answer": task.answer,
                "method": config.method,
                "outcome": result.outcome,
                "stop_reason": result.stop_reason,
                "root_mc": root.mc if root is not None else None,
                "traces": len(result.traces),
                "tree_nodes": len(result.nodes),
                "requests": result.counters.requests,
                "completions": result.counters.completions,
                "generated_tokens": result.counters.generated_tokens,
            },
        )
    )
    return rows


def _generation_record(passthrough: dict[str, Any]) -> dict[str, Any]:
    """A given trace keeps its generation's token count and finish reason (well-typed values only);
    a searched trace (prefix + rollout) had no single generation, so both stay null."""
    tokens, reason = passthrough.get("num_tokens"), passthrough.get("finish_reason")
    return {
        "num_tokens": tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
        "finish_reason": reason if isinstance(reason, str) else None,
    }


def _first_extending(traces: list[tuple[list[str], str]], prefix: tuple[str, ...]) -> str | None:
    """Id of the first output trace that starts with the step prefix `prefix`; None for the root
    (a question-level estimate) or a prefix no emitted trace continues."""
    n = len(prefix)
    return next((tid for steps, tid in traces if n and len(steps) >= n and tuple(steps[:n]) == prefix), None)


def run_annotate(
    input: str,
    mapping: dict[str, str],
    out: Path,
    engine: Engine,
    config: AnnotateConfig,
    *,
    concurrent_searches: int = 64,
    verify_timeout: float = 5.0,
    shard_size: int = 1000,
    overwrite: bool = False,
    limit: int | None = None,
    quiet: bool = False,
    partition: Partition | None = None,
    verifier: Verifier | None = None,
    scheduler: str = "auto",
    max_live_searches: int = 256,
    verify_workers: int = 1,
    prefetch: bool = False,
) -> dict[str, Any]:
    """Annotate every input row of `input` into `out` (data/, tree/, questions/, errors/).

    `scheduler`: lockstep (batches of `concurrent_searches`), async (`max_live_searches` searches
    refilled continuously, `prefetch`ing likely requests into idle engine slots) or auto (see `pick_scheduler`). `verifier` checks rollouts in
    `config.domain` (default: the math verifier with `verify_workers` processes); it is closed at the end."""
    stage = annotate_stage(
        mapping,
        engine,
        config,
        concurrent_searches=concurrent_searches,
        verify_timeout=verify_timeout,
        limit=limit,
        verifier=verifier,
        scheduler=scheduler,
        max_live_searches=max_live_searches,
        verify_workers=verify_workers,
        prefetch=prefetch,
    )
    return execute(stage, Target(input, Path(out), shard_size, overwrite, limit, quiet, partition))


def annotate_stage(
    mapping: dict[str, str],
    engine: Engine,
    config: AnnotateConfig,
    *,
    concurrent_searches: int = 64,
    verify_timeout: float = 5.0,
    limit: int | None = None,
    verifier: Verifier | None = None,
    scheduler: str = "auto",
    max_live_searches: int = 256,
    verify_workers: int = 1,
    prefetch: bool = False,
) -> Stage:
    """annotate-prm as a runner stage: lock-step, batches of `concurrent_searches` questions, each
    batch one `RoundScheduler.run`; or async, a `Work.stream` of `AsyncScheduler` (async_scheduler.py)."""
    from rsynth.verifiers.math import MathVerifier  # loads the worker pool's machinery only when used

    mode = pick_scheduler(scheduler, engine)

    @contextmanager
    def work() -> Iterator[Work]:
        with verifier or MathVerifier(timeout=verify_timeout, workers=verify_workers) as inner:
            checker = SerialVerifier(inner)  # validation and the async verify thread share it
            row_provenance = provenance(engine, config.params, checker)

            def to_rows(task: Task, result: SearchResult) -> Rows:
                return result_rows(task, result, config, row_provenance)

            if mode == "async":
                live = AsyncScheduler(engine, checker, config, max_live_searches=max_live_searches, prefetch=prefetch)
                yield Work(
                    make_validator(mapping, config.input_kind, checker, live.checker),
                    stream=lambda items: live.stream(items, to_rows),
                    description=f"annotating ({config.method}, async)",
                    summary=_summary(engine, live, mode),
                    status=live.status,
                )
                return
            sched = RoundScheduler(engine, checker, config)

            def process(items: list[Item]) -> dict[int, Rows]:
                results = sched.run([it.value for it in items])
                return {it.index: to_rows(it.value, res) for it, res in zip(items, results)}

            yield Work(
                make_validator(mapping, config.input_kind, checker, sched.checker),
                process,
                batch_size=concurrent_searches,
                description=f"annotating ({config.method})",
                summary=_summary(engine, sched, mode),
            )

    fingerprint = {**config.fingerprint(), "batch": concurrent_searches}
    if mode == "async" and not engine.request_seeded:
        fingerprint["scheduler"] = "async"  # hf: a prompt's samples depend on its batch-mates, so on the scheduler
    key = lambda inputs: run_key("annotate-prm", inputs, mapping, engine, fingerprint, limit)  # noqa: E731
    return Stage(
        "annotate-prm",
        {"data": TRACE_SCHEMA, "tree": TREE_SCHEMA, "questions": QUESTION_SCHEMA, "errors": ERROR_SCHEMA},
        key=key,
        work=work,
    )


def _unused(stats: dict[str, int]) -> int:
    """Prefetched completions no search asked for: the price of prefetching (requests are used whole)."""
    return stats["prefetched_completions"] - stats["prefetched_completions_used"]


def _summary(engine: Engine, scheduler: RolloutService, mode: str):
    """The stats table of one run: output counts, this run's scheduler and engine counters, and the
    engine's occupancy (sequences in flight: time-weighted mean and p10; busy = anything in flight)."""
    from rsynth.engines.cache import usage, usage_since

    tok0, used0, mark = engine.stats.generated_tokens, usage(engine), engine.stats.in_flight.mark()

    def summary(c: Counts) -> dict[str, Any]:
        occupancy = engine.stats.in_flight.summary(mark)
        return {
            "input rows": c.seen,
            "labelled traces (data/)": c.rows["data"],
            "tree nodes (tree/)": c.rows["tree"],
            "questions (questions/)": c.rows["questions"],
            "bad input rows (errors/)": c.rows["errors"],
            "scheduler": mode,
            **({"rounds this run": scheduler.stats["rounds"]} if mode == "lockstep" else {}),
            "rollout requests this run": scheduler.stats["requests"],
            **(
                {
                    "searches live (max)": scheduler.stats["live_max"],
                    "prefetched requests this run": scheduler.stats["prefetched"],
                    "prefetched requests used": scheduler.stats["prefetch_used"],
                    "prefetched completions unused": _unused(scheduler.stats),
                }
                if mode == "async"
                else {}
            ),
            **usage_since(engine, used0),
            "engine tokens this run": engine.stats.generated_tokens - tok0,
            "engine busy fraction": occupancy["busy"],
            "sequences in flight (mean)": round(occupancy["mean"], 2),
            "sequences in flight (p10)": occupancy["p10"],
            "rollouts/s": round(scheduler.stats["completions"] / c.seconds, 2) if c.seconds > 0 else 0.0,
            "no-answer rate this run": scheduler.stats["no_answer"] / scheduler.stats["completions"]
            if scheduler.stats["completions"]
            else 0.0,
        }

    return summary
