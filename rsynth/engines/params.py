"""The engine and sampling parameters every sampling stage takes, declared once.

Their CLI options (`--engine`, `--model`, ... `--seed`) and recipe keys (`engine`, `model`, ...,
`seed`, also accepted under a recipe's `defaults:`) are generated from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rsynth.config import param, validate_choices
from rsynth.engines.base import Engine, SamplingParams
from rsynth.engines.registry import ENGINES
from rsynth.errors import UserError

# how the client talks to a server, not what it samples: no part of a build stage's hash, so raising
# the timeout of a finished or interrupted build re-runs nothing
CLIENT_KEYS = ("request-timeout", "max-retries")


@dataclass
class EngineParams:
    engine: str = param(
        "auto",
        "--engine",
        "hf | vllm | openai | auto (vllm when importable and a GPU is present, else hf).",
        choices=ENGINES,
    )
    model: str | None = param(
        None, "--model", "HF model id or local path; default: the embedded SmolLM2-135M-Instruct.", aliases=("-m",)
    )
    base_url: list[str] = param(
        "http://127.0.0.1:8000/v1",
        "--base-url",
        "OpenAI-compatible server URL (--engine openai); repeat it (recipes: a list) for a fleet "
        "routed by question (docs/scale.md).",
        kind="strs",
    )
    endpoints: str | None = param(
        None,
        "--endpoints",
        "File of server URLs, one a line (optionally 'URL CONCURRENCY'), "
        "re-read while running: servers join and leave a fleet run (--engine openai).",
    )
    api_key: str | None = param(
        None,
        "--api-key",
        "API key for --engine openai (recipes: $OPENAI_API_KEY).",
        envvar="OPENAI_API_KEY",
        recipe=False,
    )
    concurrency: int = param(32, "--concurrency", "Requests in flight (--engine openai).")
    request_timeout: float = param(
        600.0, "--request-timeout", "Seconds to wait for one reply before retrying it (--engine openai)."
    )
    max_retries: int = param(
        5,
        "--max-retries",
        "Retries of a failed request (timeout, cut or invalid reply, 429, 5xx) "
        "before the run stops with one line (--engine openai); in a fleet, before the server is failed "
        "over (one that is unreachable or garbles replies after 2 attempts, docs/scale.md).",
    )
    batch_rows: int = param(64, "--batch-rows", "Sequences per forward batch (--engine hf).")
    temperature: float = param(0.7, "--temperature", "Sampling temperature (0: greedy).")
    top_p: float = param(0.9, "--top-p", "Nucleus sampling: keep the smallest token set with this much probability.")
    max_new_tokens: int = param(
        512,
        "--max-new-tokens",
        "Most tokens generated per completion; a completion cut there has finish_reason length (no guessed answer).",
    )
    seed: int = param(0, "--seed", "Sampling seed: same command, seed and inputs give the same output.")

    def __post_init__(self) -> None:
        validate_choices(self)
        if self.concurrency < 1 or self.batch_rows < 1 or self.max_new_tokens < 1:
            raise UserError("--concurrency, --batch-rows and --max-new-tokens must be >= 1")
        if not self.request_timeout > 0 or self.max_retries < 0:
            raise UserError("--request-timeout must be > 0 and --max-retries >= 0")

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            n=1, temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens, seed=self.seed
        )

    def build(self, cache: Path | None) -> Engine:
        """The engine, wrapped in the completion cache at `cache` when given."""
        from rsynth.engines.registry import build_engine

        return build_engine(
            self.engine,
            self.model,
            base_url=self.base_urls(),
            api_key=self.api_key,
            concurrency=self.concurrency,
            batch_rows=self.batch_rows,
            cache=cache,
            endpoints=self.endpoints,
            timeout=self.request_timeout,
            max_retries=self.max_retries,
        )

    def base_urls(self) -> list[str]:
        """The --base-url values (one string from older callers and recipes); at its default it is left
        out when an endpoints file names the servers."""
        urls = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)
        default = type(self).__dataclass_fields__["base_url"].default
        return [] if self.endpoints and urls == [default] else urls
