"""The engine interface every generator and annotator talks to.

One call takes many prompts and a `SamplingParams` with `n`, and returns `n` completions per prompt.
Rollouts from one prefix are therefore one request with n=k, which vLLM serves with one prefill and
prefix caching; callers never repeat a prompt k times. Annotators never import a concrete engine.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 512
    seed: int = 0
    stop: tuple[str, ...] = ()

    def with_n(self, n: int) -> "SamplingParams":
        return SamplingParams(n, self.temperature, self.top_p, self.max_new_tokens, self.seed, self.stop)

    def provenance(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens, "n": self.n}


@dataclass(frozen=True)
class Prompt:
    """A chat to answer, optionally with the start of the assistant's reply to continue.

    `assistant_prefix` is how rollouts resume a partial solution: the chat template is applied with a
    generation prompt and the prefix appended, so the model continues its own turn.
    """

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    assistant_prefix: str = ""

    @classmethod
    def user(cls, content: str, *, system: str | None = None, assistant_prefix: str = "") -> "Prompt":
        msgs = ((("system", system),) if system else ()) + (("user", content),)
        return cls(msgs, assistant_prefix)

    def key(self) -> str:
        return json.dumps([list(m) for m in self.messages] + [self.assistant_prefix], ensure_ascii=False)

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass(frozen=True)
class Completion:
    text: str
    num_tokens: int
    finish_reason: str  # "stop" | "length"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class EngineStats:
    """Counters every engine keeps, so benchmarks can report busy time and tokens without wrappers."""

    calls: int = 0
    prompts: int = 0
    completions: int = 0
    generated_tokens: int = 0
    busy_seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)


class Engine(ABC):
    name: str = "engine"

    def __init__(self, model: str) -> None:
        self.model = model
        self.stats = EngineStats()

    @property
    def max_batch_prompts(self) -> int:
        """How many prompts one `generate` call should carry (callers chunk by this)."""
        return 64

    @abstractmethod
    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        ...

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        import time

        if not prompts:
            return []
        t0 = time.perf_counter()
        out = self._generate(prompts, params)
        self.stats.busy_seconds += time.perf_counter() - t0
        self.stats.calls += 1
        self.stats.prompts += len(prompts)
        self.stats.batch_sizes.append(len(prompts))
        for comps in out:
            self.stats.completions += len(comps)
            self.stats.generated_tokens += sum(c.num_tokens for c in comps)
        return out

    def identity(self) -> dict:
        """What, besides the prompt and params, determines this engine's output (for cache keys)."""
        return {"engine": self.name, "model": self.model}

    def close(self) -> None:
        """Release model memory or connections."""


def batch_seed(seed: int, prompts: Sequence[Prompt], params: SamplingParams) -> int:
    """A seed derived from a batch's content, so a batch's samples do not depend on call history."""
    h = hashlib.sha256(json.dumps([seed, params.temperature, params.top_p, params.n, [p.key() for p in prompts]]).encode())
    return int.from_bytes(h.digest()[:4], "little")


def prompt_seed(seed: int, prompt: Prompt) -> int:
    h = hashlib.sha256(json.dumps([seed, prompt.key()]).encode())
    return int.from_bytes(h.digest()[:4], "little")
