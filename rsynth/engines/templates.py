"""Turning a `Prompt` into the text a local model sees."""

from __future__ import annotations

from typing import Any

from rsynth.engines.base import Prompt


def render(tokenizer: Any, prompt: Prompt) -> str:
    """Apply the model's chat template (with a generation prompt), then the assistant prefix.

    Models without a chat template get a plain "role: content" transcript, which is what base models
    were trained to continue.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(prompt.chat(), add_generation_prompt=True, tokenize=False)
    else:
        text = "".join(f"{role}: {content}\n" for role, content in prompt.messages) + "assistant: "
    return text + prompt.assistant_prefix
