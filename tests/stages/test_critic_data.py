"""Critic data end to end with real components: injected-error traces (really wrong under the math
verifier) -> `rsynth judge` over HTTP (a scripted judge) -> `filter-critiques` -> `export --format
sft-critique`; and `export --format step-dpo` from a real annotate-prm tree. The exports load in
`datasets`; the slow tests run one step of TRL's SFTTrainer and DPOTrainer on the tiny model."""

from __future__ import annotations

import json
import random

import pytest

from rsynth.annotators.labels import relative_progress
from rsynth.data.formats_pairs import step_pairs
from rsynth.data.shards import iter_split_rows
from rsynth.synth.inject import inject, parse_model_rewrite
from rsynth.verifiers.base import VerifyItem
from tests.build_support import rsynth


def test_rule_injection_carries_the_error_to_the_answer():
    steps = [
        "Ann has 4 apples.",
        "She buys 3 more: 4 + 3 = 7 apples.",
        "She eats 2: 7 - 2 = 5 apples.",
        "The answer is: 5",
    ]
    out, m = inject(steps, random.Random(0), ("arithmetic_slip",))
    assert m.step in (1, 2) and out[: m.step] == steps[: m.step] and out[m.step] != steps[m.step]
    assert out[-1] != steps[-1]  # carried through: the stated answer changed
    swapped, m = inject(["Half of 10 is 10 / 2 = 5.", "The answer is: 5"], random.Random(1), ("swapped_operand",))
    assert swapped == ["Half of 10 is 2 / 10 = 0.2.", "The answer is: 0.2"] and m.kind == "swapped_operand"
    money, m = inject(
        ["Pay 12/60 = $0.2 a minute.", "For 50: 0.2 x 50 = $10.", "The answer is: 10"], random.Random(0), ("sign",)
    )
    assert money[1:] == ["For 50: -0.2 x 50 = $-10.", "The answer is: -10"] and m.step == 0
    assert inject(["No numbers here.", "Done."], random.Random(0)) is None
    rewrite = parse_model_rewrite(
        "Step 1: a\nStep 2: 4 + 3 = 8\nStep 3: The answer is: 6", ["a", "4 + 3 = 7", "The answer is: 5"], 1
    )
    assert rewrite == ["a", "4 + 3 = 8", "The answer is: 6"]


def test_relative_progress_is_the_ratio_of_consecutive_mc_values():
    assert relative_progress([0.5, 0.25, None, 0.0, 0.5], root_mc=1.0) == [0.5, 0.5, None, None, None]


def test_step_pairs_need_the_margin_and_merge_repeated_nodes():
    nodes = [
        {"problem_id": "p", "question": "Q", "prefix_steps": ["a", "b"], "mc": 1.0, "k": 2, "correct": 2},
        {"problem_id": "p", "question": "Q", "prefix_steps": ["a", "c"], "mc": 0.0, "k": 2, "correct": 0},
        {"problem_id": "p", "question": "Q", "prefix_steps": ["a", "c"], "mc": 0.5, "k": 2, "correct": 1},
        {"problem_id": "p", "question": "Q", "prefix_steps": ["a", "d"], "mc": 0.75, "k": 4, "correct": 3},
    ]
    pairs, counts = step_pairs(nodes, 0.6)
    assert counts["sibling pairs"] == 3 and len(pairs) == 1
    assert pairs[0] | {} == {
        "prompt": "Q\na\n",
        "chosen": "b",
        "rejected": "c",
        "problem_id": "p",
        "prefix_steps": 1,
        "chosen_mc": 1.0,
        "chosen_k": 2,
        "rejected_mc": 0.25,
        "rejected_k": 4,
    }


@pytest.fixture(scope="module")
def critic_build(tmp_path_factory):
    """problems -> injected errors (+ the correct originals) -> judge (2 judgements over HTTP) -> filter."""
    from tests.judge_support import ScriptedJudge
    from tests.openai_server import serve

    tmp = tmp_path_factory.mktemp("critic")
    assert (
        rsynth(
            "generate", "problems", "-o", str(tmp / "problems"), "-t", "arithmetic", "--n", "6", "--max-steps", "2"
        ).returncode
        == 0
    )
    res = rsynth(
        "generate", "injected-errors", "-i", str(tmp / "problems"), "-o", str(tmp / "injected"), "--keep-correct", "-q"
    )
    assert res.returncode == 0, res.stderr
    server = serve(ScriptedJudge(lambda problem, steps: [1, -1]), model_name="judge")
    try:
        res = rsynth(
            "judge",
            "-i",
            str(tmp / "injected"),
            "-o",
            str(tmp / "judged"),
            "--engine",
            "openai",
            "--base-url",
            server.base_url,
            "--model",
            "judge",
            "--n-judgements",
            "2",
            "--temperature",
            "0.7",
            "-q",
        )
        assert res.returncode == 0, res.stderr
    finally:
        server.stop()
    res = rsynth("filter-critiques", "-i", str(tmp / "judged"), "-o", str(tmp / "critiques"))
    assert res.returncode == 0, res.stderr
    return tmp


def test_injected_traces_fail_the_verifier_and_export_as_labelled_traces(critic_build, tmp_path):
    from rsynth.verifiers.math import MathVerifier

    rows = list(iter_split_rows(critic_build / "injected", "data"))
    injected = [r for r in rows if r["mutation"]]
    assert injected and len(rows) - len(injected) == 6
    with MathVerifier() as v:
        verdicts = v.verify_batch([VerifyItem(r["reference_answer"], r["final_answer"]) for r in injected])
    assert not any(x.ok for x in verdicts)  # every kept injection really changed the answer
    for r in injected:
        m = json.loads(r["mutation"])
        assert r["first_error"] == m["step"] and r["step_hard"][: m["step"] + 1] == [True] * m["step"] + [False]
    res = rsynth(
        "export", "-i", str(critic_build / "injected"), "-o", str(tmp_path / "pb.jsonl"), "--format", "processbench"
    )
    assert res.returncode == 0, res.stderr
    gold = [json.loads(line) for line in (tmp_path / "pb.jsonl").read_text().splitlines()]
    assert sorted(g["label"] for g in gold) == sorted(r["first_error"] for r in rows)
    res = rsynth(
        "eval-labels",
        "--pred",
        str(critic_build / "injected"),
        "--gold",
        str(tmp_path / "pb.jsonl"),
        "--label-source",
        "mc",
    )
    assert res.returncode == 0 and "1.0" in res.stdout, res.stdout


def test_kept_critiques_agree_with_the_reference_and_load_as_chat_rows(critic_build, tmp_path):
    import datasets

    kept, filtered = (
        list(iter_split_rows(critic_build / "critiques", "data")),
        list(iter_split_rows(critic_build / "critiques", "filtered")),
    )
    judged = list(iter_split_rows(critic_build / "judged", "data"))
    assert len(kept) + len(filtered) == 2 * len(judged)
    assert kept and all(k["critique_first_error"] == k["reference_first_error"] for k in kept)
    assert all(f["critique_first_error"] != f["reference_first_error"] for f in filtered)
    out = tmp_path / "sft.jsonl"
    res = rsynth("export", "-i", str(critic_build / "critiques"), "-o", str(out), "--format", "sft-critique")
    assert res.returncode == 0, res.stderr
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert len(ds) == len(kept) and [m["role"] for m in ds[0]["messages"]] == ["user", "assistant"]
    assert "\\boxed{" in ds[0]["messages"][1]["content"] and "<paragraph_0>" in ds[0]["messages"][0]["content"]


@pytest.mark.slow
def test_trl_sft_trainer_trains_on_the_critique_export(critic_build, tiny_model_dir, tmp_path):
    import datasets
    from trl import SFTConfig, SFTTrainer

    out = tmp_path / "sft.jsonl"
    assert (
        rsynth("export", "-i", str(critic_build / "critiques"), "-o", str(out), "--format", "sft-critique").returncode
        == 0
    )
    ds = datasets.load_dataset("json", data_files=str(out), split="train").select_columns(["messages"])
    _one_step(SFTTrainer, SFTConfig, ds, tiny_model_dir, tmp_path, max_length=512)


def _one_step(trainer_cls, config_cls, ds, model_dir, tmp_path, **extra):
    """One optimizer step of a TRL trainer on the tiny causal LM; the loss must be finite."""
    import math

    from transformers import AutoModelForCausalLM, AutoTokenizer

    args = config_cls(
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        **extra,
    )
    trainer = trainer_cls(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=ds,
        processing_class=AutoTokenizer.from_pretrained(model_dir),
    )
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss)


@pytest.fixture(scope="module")
def dpo_export(tmp_path_factory):
    """A real OmegaPRM search (from the root: rollouts branch) over the scripted policy, its tree
    nodes written as annotate-prm writes tree/, exported through the CLI."""
    from dataclasses import asdict

    from rsynth.annotators import OmegaPRMConfig
    from rsynth.annotators.base import drive
    from rsynth.annotators.omegaprm import omegaprm_search
    from rsynth.annotators.scripted import ScriptedPolicy
    from rsynth.data.schema import TREE_SCHEMA
    from rsynth.data.shards import ShardSetWriter

    tmp = tmp_path_factory.mktemp("dpo")
    writer = ShardSetWriter(
        tmp / "labels", {"tree": TREE_SCHEMA}, stage="annotate-prm", run_key="scripted", primary="tree"
    )
    for q in range(3):
        res = drive(omegaprm_search(OmegaPRMConfig.paper(k=4), q), ScriptedPolicy(4, p=0.6, q=0.05, seed=q))
        for node in res.nodes:
            writer.add(
                "tree", {**asdict(node), "trace_id": None, "problem_id": f"q{q}", "question": f"Question {q}?"}, q
            )
        writer.input_done(q)
    writer.close({})
    out = tmp / "dpo.jsonl"
    res = rsynth("export", "-i", str(tmp / "labels"), "-o", str(out), "--format", "step-dpo", "--margin", "0.5")
    return tmp / "labels", out, res


def test_step_dpo_pairs_come_from_tree_siblings(dpo_export):
    import datasets

    labelled, out, res = dpo_export
    assert res.returncode == 0, res.stderr
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    nodes = list(iter_split_rows(labelled, "tree"))
    assert len(ds) >= 1
    for r in ds:
        assert r["chosen_mc"] - r["rejected_mc"] >= 0.5 and r["chosen"] != r["rejected"] and r["prompt"].endswith("\n")
        prefix = r["prompt"].split("\n")[1:-1][: r["prefix_steps"]]
        mine = {tuple(n["prefix_steps"]) for n in nodes}
        assert tuple(prefix + [r["chosen"]]) in mine and tuple(prefix + [r["rejected"]]) in mine


@pytest.mark.slow
def test_trl_dpo_trainer_trains_on_the_step_pairs(dpo_export, tiny_model_dir, tmp_path):
    import datasets
    from trl import DPOConfig, DPOTrainer

    _, out, res = dpo_export
    assert res.returncode == 0, res.stderr
    ds = datasets.load_dataset("json", data_files=str(out), split="train").select_columns(
        ["prompt", "chosen", "rejected"]
    )
    _one_step(DPOTrainer, DPOConfig, ds, tiny_model_dir, tmp_path, max_length=256)


class SneakyGenerator:
    """A scripted policy as a real Engine: rewrites the asked step with a wrong value tagged "oops"
    and continues to the wrong answer 10; a rollout reaches 9 unless its prefix holds "oops"."""

    @staticmethod
    def engine():
        import re

        from rsynth.engines.base import Completion, Engine

        class Sneaky(Engine):
            name = "sneaky"

            def _generate(self, prompts, params):
                out = []
                for p in prompts:
                    text = p.messages[-1][1]
                    if text.startswith("Below is a correct step-by-step solution"):
                        k = int(re.search(r"Rewrite step (\d+)", text).group(1))
                        lines = re.findall(r"^Step \d+: (.*)$", text, flags=re.M)
                        reply = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(lines[: k - 1]))
                        reply += f"\nStep {k}: oops, that makes {6 + k}.\nStep {k + 1}: The answer is: 10"
                    else:
                        reply = "The answer is: 10" if "oops" in p.assistant_prefix else "The answer is: 9"
                    out.append([Completion(reply, 5, "stop")] * params.n)
                return out

        return Sneaky("sneaky")


def test_model_injection_over_http_with_mc_confirmation(tmp_path):
    from tests.openai_server import serve

    rows = [
        {
            "id": f"p{i}",
            "problem": "What is 2 + 3 + 4?",
            "reference_answer": "9",
            "gold_steps": ["2 + 3 = 5.", "5 + 4 = 9.", "The answer is: 9"],
        }
        for i in range(3)
    ]
    rows.append(
        {
            "id": "wrong",
            "problem": "What is 1 + 1?",
            "reference_answer": "2",
            "steps": ["1 + 1 = 3."],
            "verdict": "incorrect",
        }
    )
    src = tmp_path / "solutions.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    server = serve(SneakyGenerator.engine(), model_name="sneaky")
    try:
        res = rsynth(
            "generate",
            "injected-errors",
            "-i",
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--method",
            "model",
            "--mc-confirm",
            "2",
            "--engine",
            "openai",
            "--base-url",
            server.base_url,
            "--model",
            "sneaky",
            "-q",
        )
    finally:
        server.stop()
    assert res.returncode == 0, res.stderr
    kept = list(iter_split_rows(tmp_path / "out", "data"))
    assert len(kept) == 3 and [r["id"] for r in iter_split_rows(tmp_path / "out", "skipped")] == ["wrong"]
    for r in kept:
        m = json.loads(r["mutation"])
        e = r["first_error"]
        assert (
            r["label_method"] == "injected:model"
            and "oops" in r["steps"][e]
            and r["steps"][:e] == rows[0]["gold_steps"][:e]
        )
        assert m["mc_after"] == 0.0 and m["mc_agrees"] and (e == 0 or m["mc_before"] == 1.0) and r["step_k"][e] == 2
