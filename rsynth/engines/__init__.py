"""LLM engines behind one small interface (`rsynth.engines.base.Engine`)."""

from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams

__all__ = ["Completion", "Engine", "Prompt", "SamplingParams"]
