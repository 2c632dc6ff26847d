"""Truncated output has no answer (issue 22): a generation cut at max tokens keeps only an answer it
marked explicitly before the cut; a guess (last number) from a cut text is `no_answer`.

Real GSM8K solutions, served over real HTTP by tests/openai_server.py, read by the OpenAI engine."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from rsynth.data.shards import iter_split_rows
from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams
from rsynth.stages.domains import MathChecker
from rsynth.stages.problem import DEFAULT_INSTRUCTION, final_answer
from rsynth.stages.solutions import SolutionsConfig, run_solutions
from tests.paths import BENCHMARKS


def gsm8k(n: int) -> list[dict]:
    with open(BENCHMARKS / "gsm8k_test.jsonl") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh)]


def reference(item: dict) -> str:
    return item["answer"].rsplit("####", 1)[1].strip()


def body(item: dict) -> str:
    """The GSM8K solution without its #### line and calculator annotations."""
    import re

    return re.sub(r"<<[^>]*>>", "", item["answer"].rsplit("####", 1)[0]).strip()


class GSM8KEngine(Engine):
    """Per problem, three completions: cut mid-step (length), cut after an explicit answer (length),
    and the whole solution ending in its figure without marking it (stop)."""

    name = "gsm8k-script"

    def __init__(self, items: list[dict]) -> None:
        super().__init__("gsm8k-script")
        self.by_question = {it["question"]: it for it in items}

    def _generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for p in prompts:
            item = next(it for q, it in self.by_question.items() if q in p.messages[-1][1])
            full = body(item)
            cut = full[: full.rindex(" ", 0, len(full) - len(reference(item)) - 2)]  # stops before the last figure
            texts = [
                (cut, "length"),
                (f"{full}\nThe answer is {reference(item)}.\nChecking: 1 + ", "length"),
                (full, "stop"),
            ]
            out.append([Completion(t, len(t.split()), r) for t, r in (texts * params.n)[: params.n]])
        return out


@pytest.fixture(scope="module")
def served():
    from tests.openai_server import serve

    items = gsm8k(6)
    server = serve(GSM8KEngine(items), model_name="gsm8k-script")
    yield server, items
    server.stop()


def test_truncated_solutions_get_no_answer_unless_marked_explicitly(served, tmp_path):
    from rsynth.engines.openai import OpenAIEngine

    server, items = served
    src = tmp_path / "problems.jsonl"
    src.write_text("".join(json.dumps(it) + "\n" for it in items))
    engine = OpenAIEngine("gsm8k-script", base_url=server.base_url, concurrency=2, backoff=0.01)
    out = tmp_path / "out"
    run_solutions(
        str(src),
        {"problem": "question"},
        out,
        engine,
        SolutionsConfig(n_samples=3, params=SamplingParams(max_new_tokens=64, seed=0)),
        quiet=True,
    )
    rows = sorted(iter_split_rows(out), key=lambda r: (r["problem_id"], r["sample_index"]))
    assert len(rows) == 18
    guessed = [
        final_answer(r["completion"], "boxed,answer-is,hashes,last-number", "stop")
        for r in rows
        if r["sample_index"] == 0
    ]
    assert sum(g is not None for g in guessed) >= 3  # what the last-number rule read from cut texts before the gate
    for r in rows:
        ref = r["reference_answer"]
        if r["sample_index"] == 0:  # cut mid-solution: the last number is an intermediate figure, not an answer
            assert r["finish_reason"] == "length" and r["final_answer"] is None and r["verdict"] == "no_answer"
        elif r["sample_index"] == 1:  # cut, but after "The answer is N"
            assert r["finish_reason"] == "length" and r["final_answer"] == ref and r["verdict"] == "correct"
        else:  # a finished solution may still have its answer read by the last-number rule
            assert r["finish_reason"] == "stop" and r["final_answer"] == ref and r["verdict"] == "correct"


def test_annotate_rollouts_apply_the_same_gate():
    checker = MathChecker(DEFAULT_INSTRUCTION)
    prefix = ("Janet sells 16 - 3 - 4 = 9 duck eggs a day.",)
    assert checker.check("18", prefix, "She makes 9 * 2 = $", "stop")[1] == "2"
    assert checker.check("18", prefix, "She makes 9 * 2 = $", "length")[1] is None
    assert checker.check("18", prefix, "She makes 9 * 2 = $18.\n\\boxed{18} and then", "length")[1] == "18"
    assert checker.check("18", prefix, "She makes", None)[1] is None  # no stop reported: not a finished text
