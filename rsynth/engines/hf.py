"""transformers engine: batched sampling on CPU or GPU.

Each micro-batch is seeded from its own content (`batch_seed`), so the samples for a batch do not
depend on what ran before it: re-running a batch after a crash gives the same completions.

Determinism across schedulers: the lock-step path batches many prompts and seeds each batch from all
of them, so a prompt's samples depend on its batch-mates. The asynchronous path (`agenerate`, the
base class's) runs one request per `generate` call on one worker thread, so its samples depend only
on (prompt, params): reproducible under any arrival order, and equal to lock-step's exactly when
lock-step batches hold one prompt (`--batch-rows` <= every request's n). It gives up cross-prompt batching, so on
CPU lock-step stays this engine's default scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence

from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams, batch_seed, token_excess
from rsynth.engines.templates import render


class HFEngine(Engine):
    name = "hf"

    def __init__(self, model: str, *, device: str | None = None, batch_rows: int = 64, dtype: str = "auto") -> None:
        super().__init__(model)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # rsynth draws its own progress; per-load bars are noise

        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_rows = batch_rows
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = {
            "auto": (torch.bfloat16 if self.device == "cuda" else torch.float32),
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }[dtype]
        self.hf_model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(self.device).eval()
        self._eos_ids = self._stop_token_ids()
        self.context: int | None = getattr(self.hf_model.config, "max_position_embeddings", None)

    def _stop_token_ids(self) -> set[int]:
        ids = set()
        eos = self.hf_model.generation_config.eos_token_id
        # padding after a row's stop string or eos is also an end, not generated text
        for value in (
            eos if isinstance(eos, list) else [eos],
            [self.tokenizer.eos_token_id, self.tokenizer.pad_token_id],
        ):
            ids.update(v for v in value if v is not None)
        return ids

    @property
    def max_batch_prompts(self) -> int:
        return self.batch_rows

    def context_excess(self, prompt: Prompt) -> str | None:
        """Checked before generate: a 5 MB problem otherwise asks torch for a terabyte-sized
        attention mask and the whole run dies with it (issue 14)."""
        return token_excess(self.tokenizer, render(self.tokenizer, prompt), self.context)

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        per_batch = max(1, self.batch_rows // max(1, params.n))
        out: list[list[Completion]] = []
        for i in range(0, len(prompts), per_batch):
            out.extend(self._generate_batch(prompts[i : i + per_batch], params))
        return out

    def _generate_batch(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        torch = self._torch
        texts = [render(self.tokenizer, p) for p in prompts]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sample = params.temperature > 0
        # greedy decoding rejects num_return_sequences > 1, and its n samples are identical anyway:
        # decode once per prompt and repeat the completion n times
        per_prompt = params.n if sample else 1
        kwargs = dict(
            max_new_tokens=params.max_new_tokens,
            num_return_sequences=per_prompt,
            pad_token_id=self.tokenizer.pad_token_id,
            do_sample=sample,
        )
        if sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        torch.manual_seed(batch_seed(params.seed, prompts, params))
        with torch.inference_mode():
            gen = self.hf_model.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1] :].tolist()
        results: list[list[Completion]] = []
        for p in range(len(prompts)):
            comps = [self._completion(seq, params) for seq in new[p * per_prompt : (p + 1) * per_prompt]]
            results.append(comps if sample else comps * params.n)
        return results

    def _completion(self, seq: list[int], params: SamplingParams) -> Completion:
        length, finish = len(seq), "length"
        for j, tok in enumerate(seq):
            if tok in self._eos_ids:
                length, finish = j, "stop"
                break
        text = self.tokenizer.decode(seq[:length], skip_special_tokens=True)
        for stop in params.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return Completion(text=text, num_tokens=length, finish_reason=finish)

    def close(self) -> None:
        super().close()
        del self.hf_model
