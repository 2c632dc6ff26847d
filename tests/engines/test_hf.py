"""HFEngine on a tiny random Llama built locally: n samples, token counts, finish reasons, seeding,
chat template and assistant-prefix continuation, all through real `transformers.generate`."""

from __future__ import annotations

import torch

from rsynth.engines.base import Prompt, SamplingParams
from rsynth.engines.hf import HFEngine
from rsynth.engines.registry import make_engine, pick_engine
from rsynth.engines.templates import render

PROMPTS = [Prompt.user(f"What is {i} plus {i * 3}?") for i in range(5)]
SAMPLE = SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=11)
GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=12, seed=0)


def _manual_greedy(engine: HFEngine, text: str, max_new: int) -> list[int]:
    """Greedy decoding of `text` with the bare model: the reference the engine must reproduce."""
    enc = engine.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = engine.hf_model.generate(
            **enc, max_new_tokens=max_new, do_sample=False, pad_token_id=engine.tokenizer.pad_token_id
        )
    return out[0, enc["input_ids"].shape[1] :].tolist()


def test_n_samples_per_prompt_and_token_counts(tiny_engine: HFEngine) -> None:
    before = tiny_engine.stats.generated_tokens
    out = tiny_engine.generate(PROMPTS, SAMPLE)
    assert len(out) == len(PROMPTS) and all(len(c) == 4 for c in out)
    flat = [c for comps in out for c in comps]
    reasons = {c.finish_reason for c in flat}
    assert reasons == {"stop", "length"}  # small vocab: eos is sampled sometimes, not always
    for c in flat:
        if c.finish_reason == "length":
            assert c.num_tokens == SAMPLE.max_new_tokens
        else:
            assert c.num_tokens < SAMPLE.max_new_tokens
        assert "<|end|>" not in c.text and "<|pad|>" not in c.text
    assert tiny_engine.stats.generated_tokens - before == sum(c.num_tokens for c in flat)
    assert len({c.text for c in out[0]}) > 1  # n samples are distinct draws, not copies


def test_token_counts_match_the_model(tiny_engine: HFEngine) -> None:
    """num_tokens is the number of generated ids before eos, checked against a manual greedy decode."""
    for prompt in PROMPTS[:3]:
        ids = _manual_greedy(tiny_engine, render(tiny_engine.tokenizer, prompt), 40)
        eos = tiny_engine.tokenizer.eos_token_id
        expected = ids.index(eos) if eos in ids else len(ids)
        (c,) = tiny_engine.generate([prompt], GREEDY.__class__(n=1, temperature=0.0, max_new_tokens=40))[0]
        assert c.num_tokens == expected
        assert c.text == tiny_engine.tokenizer.decode(ids[:expected], skip_special_tokens=True)
        assert c.finish_reason == ("stop" if eos in ids else "length")


def test_same_seed_and_batch_is_deterministic(tiny_engine: HFEngine) -> None:
    a = tiny_engine.generate(PROMPTS, SAMPLE)
    torch.manual_seed(12345)  # global RNG state before the call must not matter
    b = tiny_engine.generate(PROMPTS, SAMPLE)
    assert a == b
    c = tiny_engine.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=12))
    assert [x.text for comps in a for x in comps] != [x.text for comps in c for x in comps]


def test_chat_template_is_applied(tiny_engine: HFEngine) -> None:
    """Greedy output equals greedy decoding of the chat-templated text, and the system turn matters."""
    prompt = Prompt.user("Add 2 and 2.", system="Be brief.")
    text = render(tiny_engine.tokenizer, prompt)
    assert text == "<|system|>Be brief.<|end|>\n<|user|>Add 2 and 2.<|end|>\n<|assistant|>"
    ids = _manual_greedy(tiny_engine, text, GREEDY.max_new_tokens)
    eos = tiny_engine.tokenizer.eos_token_id
    (c,) = tiny_engine.generate([prompt], GREEDY)[0]
    assert c.text == tiny_engine.tokenizer.decode(
        ids[: ids.index(eos)] if eos in ids else ids, skip_special_tokens=True
    )
    raw_ids = _manual_greedy(tiny_engine, "Add 2 and 2.", GREEDY.max_new_tokens)
    assert ids != raw_ids  # the template changes what the model sees


def test_assistant_prefix_is_continued(tiny_engine: HFEngine) -> None:
    """A prompt with a prefix continues the assistant turn: same ids as decoding template + prefix."""
    prefix = "Step 1: 2 + 2 = 4.\n\n"
    prompt = Prompt.user("Add 2 and 2.", assistant_prefix=prefix)
    text = render(tiny_engine.tokenizer, prompt)
    assert text.endswith("<|assistant|>" + prefix)
    ids = _manual_greedy(tiny_engine, text, GREEDY.max_new_tokens)
    eos = tiny_engine.tokenizer.eos_token_id
    ids = ids[: ids.index(eos)] if eos in ids else ids
    (c,) = tiny_engine.generate([prompt], GREEDY)[0]
    assert c.text == tiny_engine.tokenizer.decode(ids, skip_special_tokens=True)
    (plain,) = tiny_engine.generate([Prompt.user("Add 2 and 2.")], GREEDY)[0]
    assert plain.text != c.text


def test_micro_batches_and_stop_strings(tiny_model_dir: str) -> None:
    """batch_rows splits a call into micro-batches; a stop string cuts the text and reports 'stop'."""
    engine = HFEngine(tiny_model_dir, batch_rows=4)
    try:
        out = engine.generate(PROMPTS, SAMPLE.with_n(2))
        assert len(out) == 5 and all(len(c) == 2 for c in out)
        stop = SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=3, stop=("e",))
        cut = [c for comps in engine.generate(PROMPTS, stop) for c in comps]
        assert all("e" not in c.text for c in cut)
        free = [
            c
            for comps in engine.generate(
                PROMPTS, SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=3)
            )
            for c in comps
        ]
        assert any("e" in c.text for c in free)
        assert sum(c.finish_reason == "stop" for c in cut) > sum(c.finish_reason == "stop" for c in free)
    finally:
        engine.close()


def test_auto_picks_hf_without_vllm_gpu(tiny_model_dir: str) -> None:
    import importlib.util

    from rsynth.engines.vllm import cuda_available

    expected = "vllm" if importlib.util.find_spec("vllm") and cuda_available() else "hf"
    assert pick_engine("auto") == expected
    if expected == "hf":
        engine = make_engine("auto", tiny_model_dir, batch_rows=8)
        assert engine.name == "hf" and engine.model == tiny_model_dir and engine.max_batch_prompts == 8
        engine.close()


def test_greedy_with_n_samples(tiny_engine: HFEngine) -> None:
    """temperature 0 with n > 1 (e.g. `--temperature 0 --n-samples 4`) gives n copies of the greedy answer."""
    out = tiny_engine.generate(PROMPTS[:2], SamplingParams(n=3, temperature=0.0, max_new_tokens=10))
    single = tiny_engine.generate(PROMPTS[:2], SamplingParams(n=1, temperature=0.0, max_new_tokens=10))
    assert [len(c) for c in out] == [3, 3]
    assert all(comps == [one[0]] * 3 for comps, one in zip(out, single))
