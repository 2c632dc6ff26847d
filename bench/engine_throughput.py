"""Engine throughput: raw `Engine.generate` tokens/s vs `generate solutions` end-to-end tokens/s.

For each installed engine (hf always; openai through the in-process OpenAI-compatible test server
wrapping the same hf model; vllm when importable) this loads the model once, then measures side by
side on the same prompts, sampling parameters and batches:

* raw: `engine.generate` on the solution prompts, `max_batch_prompts // n_samples` problems per call,
  exactly the batches `run_solutions` forms;
* end-to-end: `run_solutions` (read JSONL → prompt → generate → split → extract → verify → Arrow
  shards + manifest) with the same engine object, timed around the whole call.

Seeds are per batch/prompt content, so both sides generate the same tokens; the ratio is therefore
pure pipeline overhead. Target: ratio >= 0.9.

    python bench/engine_throughput.py                 # SmolLM2-135M (the embedded default), ~4 min on 2 idle cores
    python bench/engine_throughput.py --tiny          # a freshly built tiny random model, seconds
    python bench/engine_throughput.py --model PATH --problems 32 --n-samples 8
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from rsynth.engines.base import Engine, SamplingParams  # noqa: E402
from rsynth.stages.solutions import Problem, SolutionSampler, SolutionsConfig, run_solutions  # noqa: E402
from rsynth.synth.templates import Knobs, generate_problems  # noqa: E402

console = Console()


def write_problems(path: Path, n: int) -> list[Problem]:
    rows = list(generate_problems("arithmetic", n, 0, Knobs(max_steps=2, max_number=12)))
    path.write_text(
        "".join(
            json.dumps({"id": r["id"], "problem": r["problem"], "answer": r["reference_answer"]}) + "\n" for r in rows
        )
    )
    return [Problem(r["id"], r["problem"], r["reference_answer"]) for r in rows]


def raw_run(engine: Engine, problems: list[Problem], config: SolutionsConfig) -> tuple[int, float]:
    """Generated tokens and seconds for the pipeline's batches, sent straight to the engine."""
    sampler = SolutionSampler.__new__(SolutionSampler)  # only its prompt() is needed: no verifier here
    sampler.config = config
    prompts = [sampler.prompt(p) for p in problems]
    per_call = max(1, engine.max_batch_prompts // config.n_samples)
    params = config.params.with_n(config.n_samples)
    tokens = 0
    t0 = time.perf_counter()
    for i in range(0, len(prompts), per_call):
        tokens += sum(c.num_tokens for comps in engine.generate(prompts[i : i + per_call], params) for c in comps)
    return tokens, time.perf_counter() - t0


def e2e_run(engine: Engine, input_path: Path, out: Path, config: SolutionsConfig) -> tuple[int, float]:
    t0 = time.perf_counter()
    stats = run_solutions(str(input_path), {}, out, engine, config, overwrite=True, quiet=True)
    return stats["generated tokens this run"], time.perf_counter() - t0


def measure(
    name: str,
    engine: Engine,
    problems: list[Problem],
    input_path: Path,
    work: Path,
    config: SolutionsConfig,
    repeats: int,
) -> dict:
    warm = SolutionsConfig(n_samples=1, params=SamplingParams(max_new_tokens=4, seed=99))
    raw_run(engine, problems[:1], warm)  # first-call costs (kernels, allocator) are paid by neither side
    best_raw, best_e2e = (0, float("inf")), (0, float("inf"))
    for r in range(repeats):  # interleaved (ABBA order), best of each, so machine noise hits both sides alike
        if r % 2 == 0:
            raw = raw_run(engine, problems, config)
            e2e = e2e_run(engine, input_path, work / f"{name}-{r}", config)
        else:
            e2e = e2e_run(engine, input_path, work / f"{name}-{r}", config)
            raw = raw_run(engine, problems, config)
        best_raw = min(best_raw, raw, key=lambda x: x[1])
        best_e2e = min(best_e2e, e2e, key=lambda x: x[1])
    raw_tps = best_raw[0] / best_raw[1]
    e2e_tps = best_e2e[0] / best_e2e[1]
    return {
        "engine": name,
        "raw_tokens": best_raw[0],
        "e2e_tokens": best_e2e[0],
        "raw_s": best_raw[1],
        "e2e_s": best_e2e[1],
        "raw_tps": raw_tps,
        "e2e_tps": e2e_tps,
        "ratio": e2e_tps / raw_tps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="model id or path (default: embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--tiny", action="store_true", help="use a freshly built tiny random model (quick run)")
    ap.add_argument("--engines", default="hf,openai,vllm", help="comma list; missing ones are skipped")
    ap.add_argument("--problems", type=int, default=4)
    ap.add_argument("--n-samples", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-rows", type=int, default=64, help="hf: sequences per forward batch")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from rsynth.engines.default_model import DEFAULT_MODEL, is_default, resolve_model
    from rsynth.engines.hf import HFEngine

    work = Path(tempfile.mkdtemp(prefix="rsynth-bench-"))
    if args.tiny:
        from tests.tiny_model import build_tiny_model

        model, label = str(build_tiny_model(work / "tiny")), "tiny random Llama (h=64, 2 layers)"
    else:
        model, label = resolve_model(args.model), (DEFAULT_MODEL if is_default(args.model) else args.model)
    input_path = work / "problems.jsonl"
    problems = write_problems(input_path, args.problems)
    config = SolutionsConfig(
        n_samples=args.n_samples,
        params=SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=args.max_new_tokens, seed=0),
    )
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    results, skipped = [], []

    hf = HFEngine(model, batch_rows=args.batch_rows)
    if "hf" in wanted:
        results.append(measure("hf", hf, problems, input_path, work, config, args.repeats))
    if "openai" in wanted:
        from rsynth.engines.openai import OpenAIEngine
        from tests.openai_server import serve

        server = serve(hf, model_name="bench")
        client = OpenAIEngine("bench", base_url=server.base_url, concurrency=8)
        try:
            results.append(
                measure("openai (test server → hf)", client, problems, input_path, work, config, args.repeats)
            )
        finally:
            client.close()
            server.stop()
    hf.close()
    if "vllm" in wanted:
        if importlib.util.find_spec("vllm") is None:
            skipped.append("vllm (not installed)")
        else:
            from rsynth.engines.vllm import VLLMEngine

            engine = VLLMEngine(model)
            results.append(measure("vllm", engine, problems, input_path, work, config, args.repeats))
            engine.close()

    table = Table(
        title=f"engine throughput — {label}; {args.problems} problems × {args.n_samples} samples × ≤{args.max_new_tokens} tokens"
    )
    for col in ("engine", "tokens", "raw tok/s", "e2e tok/s", "e2e / raw"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for r in results:
        tokens = (
            str(r["raw_tokens"]) if r["raw_tokens"] == r["e2e_tokens"] else f"{r['raw_tokens']} / {r['e2e_tokens']}"
        )
        ratio = f"{r['ratio']:.2f}" + ("" if r["ratio"] >= 0.9 else " (< 0.9)")
        table.add_row(r["engine"], tokens, f"{r['raw_tps']:.1f}", f"{r['e2e_tps']:.1f}", ratio)
    console.print(table)
    if skipped:
        console.print("skipped: " + ", ".join(skipped))


if __name__ == "__main__":
    main()
