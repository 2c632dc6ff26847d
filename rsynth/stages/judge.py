"""`rsynth judge`: ask a judge model for each trace's earliest wrong step, N times, and vote.

One engine call per batch of traces, one request with n=N per trace (the ProcessBench critic prompt,
`rsynth.annotators.judge`), through the completion cache like every sampling stage: a killed run
re-forms the same batches, replays them from the cache and continues where it stopped.

Every input row ends somewhere: judged traces in `data/`, traces none of whose judgements could be
parsed in `unparsed/` (never read as "no error"), bad rows in `errors/`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsynth.annotators.judge import TEMPLATE_NAME, critic_prompt, majority_vote, parse_first_error
from rsynth.config import param
from rsynth.data.readers import FieldSpec, Record, RowError, map_fields
from rsynth.data.schema import ERROR_SCHEMA, JUDGED_TRACE_SCHEMA
from rsynth.engines.base import Engine, Prompt, SamplingParams
from rsynth.engines.routing import question_key
from rsynth.errors import UserError
from rsynth.runner.loop import Item, Rows
from rsynth.runner.stage import Counts, RunOptions, Stage, Target, Work, execute
from rsynth.stages.provenance import provenance
from rsynth.stages.run_key import run_key

if TYPE_CHECKING:
    from typing_extensions import Unpack

# Judge defaults for the engine parameters: one greedy judgement with room for a critique.
JUDGE_SAMPLING = {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 1024}

TRACE_FIELDS = [FieldSpec("problem", str), FieldSpec("steps", list), FieldSpec("id", str, required=False)]


@dataclass
class JudgeConfig:
    """The judge stage's parameters (`rsynth.config.param`: they generate the CLI options and recipe
    keys). `sampling` comes from the engine parameters (judge defaults: `JUDGE_SAMPLING`); it is None
    until given, so the greedy check runs once the sampling is known."""

    n_judgements: int = param(
        1, "--n-judgements", "Judgements sampled per trace (one request with n=N), combined by majority vote."
    )
    batch: int = param(64, "--batch", "Traces per engine call.")
    sampling: SamplingParams | None = None

    def __post_init__(self) -> None:
        if self.n_judgements < 1 or self.batch < 1:
            raise UserError("--n-judgements and --batch must be >= 1")
        if self.sampling is not None and self.n_judgements > 1 and self.sampling.temperature <= 0:
            raise UserError(
                f"--n-judgements {self.n_judgements} with temperature 0 samples the same greedy judgement "
                f"{self.n_judgements} times; set --temperature > 0 (e.g. 0.7)"
            )

    def params(self) -> SamplingParams:
        return (self.sampling or SamplingParams(**JUDGE_SAMPLING)).with_n(self.n_judgements)

    def fingerprint(self) -> dict[str, Any]:
        return {**asdict(self), "template": TEMPLATE_NAME}


@dataclass
class JudgeTask:
    id: str
    problem: str
    steps: list[str]
    row: dict[str, Any]  # the input row, passed through (MC labels included)


def validate_trace(record: Record, mapping: dict[str, str]) -> JudgeTask | RowError:
    view = map_fields(record, TRACE_FIELDS, mapping)
    if isinstance(view, RowError):
        return view
    steps = [s for s in view["steps"] if s.strip()]
    if not steps:
        return RowError(
            record.source,
            record.row,
            mapping.get("steps", "steps"),
            "trace has no steps",
            json.dumps(record.data, default=str)[:2000],
        )
    tid = view["id"] or f"{Path(record.source).name.split('.')[0]}-{record.row}"
    return JudgeTask(
        tid, view["problem"], steps, {**record.data, "id": tid, "problem": view["problem"], "steps": steps}
    )


class Judge:
    """Turns a batch of traces into judged rows: one engine call, n=N judgements per trace."""

    def __init__(self, engine: Engine, config: JudgeConfig) -> None:
        self.engine = engine
        self.config = config
        self.stats = {"traces": 0, "judgements": 0, "unparseable judgements": 0, "judge tokens": 0}
        self.provenance = provenance(engine, config.params(), template=TEMPLATE_NAME)

    def __call__(self, items: list[Item]) -> dict[int, Rows]:
        tasks: list[JudgeTask] = [it.value for it in items]
        # routed by question: the critiques of one question's traces go where its probes went
        prompts = [Prompt.user(critic_prompt(t.problem, t.steps), route=question_key(t.problem)) for t in tasks]
        replies = self.engine.generate(prompts, self.config.params())
        out: dict[int, Rows] = {}
        for it, task, comps in zip(items, tasks, replies):
            votes = [parse_first_error(c.text, len(task.steps)) for c in comps]
            vote = majority_vote(votes)
            tokens = sum(c.num_tokens for c in comps)
            row = {
                **task.row,
                "judge_first_error": vote.first_error,
                "judge_votes": votes,
                "judge_agreement": vote.agreement,
                "judge_unparsed": vote.unparsed,
                "judge_tokens": tokens,
                "judge_critiques": [c.text for c in comps],
                "judge_provenance": self.provenance,
            }
            out[it.index] = [("data" if vote.first_error is not None else "unparsed", row)]
            self.stats["traces"] += 1
            self.stats["judgements"] += len(comps)
            self.stats["unparseable judgements"] += vote.unparsed
            self.stats["judge tokens"] += tokens
        return out


def judge_stage(mapping: dict[str, str], engine: Engine, config: JudgeConfig, *, limit: int | None = None) -> Stage:
    """judge as a runner stage: batches of `config.batch` traces, one engine call each."""
    if config.sampling is None:
        config = replace(config, sampling=SamplingParams(**JUDGE_SAMPLING))  # validates N against greedy sampling
    judged = config

    @contextmanager
    def work() -> Iterator[Work]:
        judge = Judge(engine, judged)
        tok0 = engine.stats.generated_tokens

        def summary(c: Counts) -> dict[str, Any]:
            s = judge.stats
            return {
                "input rows": c.seen,
                "judged traces (data/)": c.rows["data"],
                "no parseable judgement (unparsed/)": c.rows["unparsed"],
                "bad input rows (errors/)": c.rows["errors"],
                "judgements this run": s["judgements"],
                "unparseable judgements this run": s["unparseable judgements"],
                "judge tokens per trace this run": s["judge tokens"] / s["traces"] if s["traces"] else 0.0,
                "engine tokens this run": engine.stats.generated_tokens - tok0,
                "engine prompts sent this run": getattr(engine, "misses", engine.stats.prompts),
                "prompts served from cache this run": getattr(engine, "hits", 0),
            }

        yield Work(
            lambda r: validate_trace(r, mapping),
            judge,
            batch_size=judged.batch,
            description=f"judging (n={judged.n_judgements})",
            summary=summary,
        )

    key = lambda inputs: run_key("judge", inputs, mapping, engine, judged.fingerprint(), limit)  # noqa: E731
    return Stage(
        "judge",
        {"data": JUDGED_TRACE_SCHEMA, "unparsed": JUDGED_TRACE_SCHEMA, "errors": ERROR_SCHEMA},
        key=key,
        work=work,
    )


def run_judge(
    input: str,
    mapping: dict[str, str],
    out: Path,
    engine: Engine,
    config: JudgeConfig,
    **run: Unpack[RunOptions],
) -> dict[str, Any]:
    """Judge every trace of `input` into `out` (data/, unparsed/, errors/), resuming a killed run."""
    stage = judge_stage(mapping, engine, config, limit=run.get("limit"))
    return execute(stage, Target(input, Path(out), **run))


LABEL_SOURCES = ("auto", "mc", "judge")


def predicted_first_errors(out: Path | str, source: str = "auto") -> tuple[str, dict[str, int]]:
    """(source used, {trace id: first error}) of an output directory, for ProcessBench scoring.

    `mc` reads annotate-prm's `first_error`, `judge` reads `judge_first_error`; `auto` picks the judge's
    in a judge stage's output, else MC. Traces with no label are absent (scored as wrong)."""
    from rsynth.data.shards import MANIFEST, iter_split_rows

    if source == "auto":
        stage = json.loads((Path(out) / MANIFEST).read_text()).get("stage")
        source = "judge" if stage == "judge" else "mc"
    column = "judge_first_error" if source == "judge" else "first_error"
    return source, {r["id"]: r[column] for r in iter_split_rows(out, "data") if r.get(column) is not None}
