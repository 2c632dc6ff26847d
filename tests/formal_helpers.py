"""Shared by test_formal.py and test_codegen.py: a scripted engine, a tiny real chat model, and
verifiers that record or replay items (so every Lean check of the suite runs in one Lean process)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem

Script = Callable[[Prompt], list[str]]


class ScriptedEngine(Engine):
    """Returns fixed completions chosen by `script(prompt)`, cycled to fill n (a real model of this
    size never writes valid Lean or Python; the pipelines cannot tell the difference)."""

    name = "scripted"

    def __init__(self, script: Script) -> None:
        super().__init__("scripted")
        self.script = script
        self.prompts: list[Prompt] = []

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        self.prompts += prompts
        out = []
        for p in prompts:
            texts = self.script(p)
            out.append(
                [Completion(texts[i % len(texts)], len(texts[i % len(texts)].split()), "stop") for i in range(params.n)]
            )
        return out


def key(item: VerifyItem) -> tuple:
    return item.reference, item.candidate, tuple(sorted((k, str(v)) for k, v in item.extra.items()))


class RecordingVerifier(Verifier):
    """Phase one: note every item a pipeline asks about and answer `error` (no Lean run)."""

    def __init__(self, name: str = "lean") -> None:
        self.name = name
        self.items: dict[tuple, VerifyItem] = {}

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        for it in items:
            self.items[key(it)] = it
        return [Verdict("error", False, {"reason": "recording"}) for _ in items]


class ReplayVerifier(Verifier):
    """Phase two: answer from verdicts computed in one real run; an item nobody recorded fails."""

    def __init__(self, verdicts: dict[tuple, Verdict], name: str = "lean") -> None:
        self.name = name
        self.verdicts = verdicts

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        missing = [it for it in items if key(it) not in self.verdicts]
        assert not missing, f"item not checked in the batched Lean run: {missing[0]}"
        return [self.verdicts[key(it)] for it in items]
