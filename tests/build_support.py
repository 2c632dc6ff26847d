"""Helpers for the build, card and scale-out tests: a tiny random local model and recipe runners.

`tiny_model` stands in for the shared `tiny_model_dir` fixture until that lands in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
SPECIAL = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]


def build_tiny_model(path: Path) -> Path:
    """A BPE tokenizer trained on arithmetic text and a 2-layer, 64-wide Llama with random weights."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [f"Step {i}: {i} + {i} = {2 * i}. Mia has {i} shells. The answer is: {2 * i}" for i in range(300)]
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|end|>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=1024, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, bos_token_id=None, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-model")))


def planted_traces(path: Path, n: int = 6) -> Path:
    """Traces whose first step states the right answer and whose last step a wrong one.

    Rollouts inherit the last "The answer is" of prefix + continuation and the random model never
    writes the phrase, so MC > 0 exactly before the last step: real labels from a random model.
    """
    rows = []
    for i in range(n):
        m = 3 + i % 3
        steps = ["Step 1: The answer is: 7"] + [f"Step {j + 2}: part {j} of the sum." for j in range(m - 2)] + [f"Step {m}: The answer is: 8"]
        rows.append({"id": f"t{i}", "problem": f"What is 3 + 4? (variant {i})", "answer": "7", "steps": steps})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rsynth(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (as a user or CI job would)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rsynth", *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO)


def write_recipe(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def chain_recipe(tmp: Path, model: str, *, n: int = 6, out: str = "out") -> Path:
    """Every stage kind once, on the tiny model. `batch-rows` equals the samples per prompt, so each
    hf micro-batch holds one prompt and sampling does not depend on how inputs are partitioned."""
    traces = planted_traces(tmp / "traces.jsonl")
    return write_recipe(tmp / "chain.yaml", f"""\
name: chain
out: {tmp / out}
license: apache-2.0
defaults: {{engine: hf, model: {model}, batch-rows: 2, max-new-tokens: 8, temperature: 1.0, seed: 0}}
stages:
  - problems: {{template: arithmetic, n: {n}, max-steps: 1, max-number: 9, shard-size: 4}}
  - decontaminate: {{input: problems, against: gsm8k}}
  - solutions: {{input: decontaminate, n-samples: 2, shard-size: 4}}
  - filter: {{input: solutions, pass-rate: "0:0.5"}}
  - annotate-prm: {{input: filter, method: math-shepherd, n: 2}}
  - annotate-prm: {{id: labels, source: {traces}, input-kind: traces, k0: 2, k: 2}}
  - export: {{input: labels, format: trl}}
  - card: {{}}
""")
