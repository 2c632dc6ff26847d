"""The parameters of `rsynth decontaminate` and of a recipe's `decontaminate` stage, declared once.

The CLI options (`rsynth.cli.params.with_configs`) and the recipe keys (`rsynth.recipes.adapters`)
are generated from these fields, and `stage()` builds the one `Stage` that both run through
`rsynth.runner.stage.execute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rsynth.config import param, params_of, validate_choices
from rsynth.engines.registry import ENGINES
from rsynth.errors import UserError

if TYPE_CHECKING:
    from rsynth.engines.base import Engine


def _fraction(value: float, flag: str) -> None:
    if not 0.0 < value <= 1.0:
        raise UserError(f"{flag} {value}: expected a number in (0, 1]")


@dataclass(frozen=True)
class DecontamParams:
    """Matching settings (n-gram, dedup, the semantic switch, review policy, parallelism)."""

    against: str | None = param(
        None,
        "--against",
        "Comma-separated bundled sets (gsm8k,math500,aime24,aime25,amc2023,humaneval,mbppplus,"
        "minif2f), 'all', or hub ids. Default: all, unless --against-file is given.",
        kind="strs",
    )
    against_file: list[str] | None = param(
        None, "--against-file", "Another benchmark (JSONL, Parquet, Arrow, HF directory); repeatable.", kind="strs"
    )
    against_field: str = param(
        "problem", "--against-field", "Text column of --against-file and hub benchmarks (also: a bare --field COLUMN)."
    )
    text_column: str = param(
        "problem", "--text-column", "Input column holding the text to check (also: --field text=COLUMN)."
    )
    answer_column: str = param(
        "auto",
        "--answer-column",
        "Column with the row's reference answer (auto: reference_answer, answer, "
        "final_answer, ...; none: ignore answers). Without one, a marked answer in the text (####, boxed, Answer:).",
    )
    solution_column: str = param(
        "auto",
        "--solution-column",
        "Column with the row's reference program (auto: solution, "
        "canonical_solution, code, ...; without one, a Python program in the text; none: do not execute).",
    )
    tests_column: str = param(
        "auto", "--tests-column", "Column with the row's own tests (auto: tests, test, test_list; none)."
    )
    ngram: int = param(13, "--ngram", "n-gram length for long items.")
    min_ngram: int = param(6, "--min-ngram", "Shortest window for short items; shorter items are exact-match only.")
    max_df: int = param(4, "--max-df", "Ignore n-grams found in more than this many reference items (boilerplate).")
    item_threshold: float = param(0.5, "--item-threshold", "Flag when this share of an item's n-grams is in the row.")
    row_threshold: float = param(0.5, "--row-threshold", "Flag when this share of the row's n-grams is in one item.")
    dedup: bool = param(False, "--dedup", "Also remove exact and near duplicates within the input.")
    dedup_threshold: float = param(0.8, "--dedup-threshold", "MinHash Jaccard (5-gram shingles) for near duplicates.")
    semantic: bool = param(
        False,
        "--semantic",
        "Also catch rephrased benchmark items: quantity signatures, answers, code execution and "
        "MiniLM embeddings (needs the semantic extra).",
    )
    strict: bool = param(
        False,
        "--strict",
        "Also remove rows that reuse an item's setup and numbers but ask another question "
        "(default: listed in review/ with the evidence).",
    )
    workers: int = param(1, "--workers", "Worker processes for matching.")
    batch_size: int = param(1024, "--batch-size", "Rows per batch sent to a worker.")

    def __post_init__(self) -> None:
        validate_choices(self)
        if self.ngram < 2 or self.min_ngram < 2 or self.max_df < 1 or self.workers < 1 or self.batch_size < 1:
            raise UserError("--ngram and --min-ngram must be >= 2, --max-df, --workers and --batch-size >= 1")
        if self.ngram < self.min_ngram:
            raise UserError(f"--ngram {self.ngram} is shorter than --min-ngram {self.min_ngram}")
        for name in ("item_threshold", "row_threshold", "dedup_threshold"):
            _fraction(getattr(self, name), _flag(name))

    def against_names(self) -> list[str]:
        """`--against` as a list of names: comma-separated strings (or a recipe list); `all` unless files are given."""
        given = [self.against] if isinstance(self.against, str) else list(self.against or [])
        names = [a.strip() for item in given for a in item.split(",") if a.strip()]
        return names or ([] if self.against_file else ["all"])

    def against_files(self) -> list[str]:
        files = self.against_file
        return [files] if isinstance(files, str) else list(files or [])


def _flag(name: str) -> str:
    return next(meta["flag"] for f, meta, _ in params_of(DecontamParams) if f.name == name)


@dataclass(frozen=True)
class JudgeParams:
    """The optional LLM judge of the pairs the rules leave open (`--semantic` only)."""

    judge_engine: str = param("auto", "--judge-engine", "Engine of the LLM judge for uncertain pairs.", choices=ENGINES)
    judge_model: str | None = param(
        None, "--judge-model", "Model of the LLM judge; without it uncertain pairs are kept and listed in review/."
    )
    judge_base_url: str = param(
        "http://127.0.0.1:8000/v1", "--judge-base-url", "OpenAI-compatible server URL (--judge-engine openai)."
    )
    judge_api_key: str | None = param(
        None,
        "--api-key",
        "API key for --judge-engine openai (recipes: $OPENAI_API_KEY).",
        envvar="OPENAI_API_KEY",
        recipe=False,
    )

    def __post_init__(self) -> None:
        validate_choices(self)

    def build(self, out: Path) -> Engine | None:
        """The judge engine with its completion cache in `out` (a re-run asks nothing twice), or None."""
        if not self.judge_model:
            return None
        from rsynth.engines.params import EngineParams

        params = EngineParams(
            engine=self.judge_engine,
            model=self.judge_model,
            base_url=self.judge_base_url,
            api_key=self.judge_api_key,
            concurrency=8,
            batch_rows=16,
        )
        return params.build(Path(out) / "cache.sqlite")
