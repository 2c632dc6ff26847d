"""Shared by test_formal.py and test_codegen.py: a scripted engine, a tiny real chat model, and
verifiers that record or replay items (so every Lean check of the suite runs in one Lean process)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

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
            out.append([Completion(texts[i % len(texts)], len(texts[i % len(texts)].split()), "stop") for i in range(params.n)])
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


def build_tiny_chat_model(path: Path) -> str:
    """A random 2-layer Llama with a BPE tokenizer and a chat template: real generate(), no hub."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["theorem foo (n : Nat) : n + 0 = n := by simp", "def f(x):\n    return x + 1", "assert f(1) == 2",
              "Solve the problem step by step. The answer is 42.", "```lean\nintro h\nomega\n```", "```python\nprint(1)\n```"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>")
    fast.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                          "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    fast.save_pretrained(path)
    config = LlamaConfig(vocab_size=fast.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    return str(path)
