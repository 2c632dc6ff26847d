"""RL exports read by the trainers' own dataset code, and rsynth's rewards called as each trainer calls them.

- verl 0.9.1 (installed with --no-deps, Makefile): `RLHFDataset` reads `--format verl`; the reward is
  loaded by verl's own `get_custom_reward_fn` from `pkg://rsynth.rewards.verl` and called with the
  keywords its naive reward manager passes; `default_compute_score` is verl's stock dispatch.
- open-instruct: not installable here; its `rlvr_tokenize_v3` contract (keys, chat template on
  `messages`, str -> list ground truth) is applied to `--format tulu`; OpenRLHF 0.8.11's own
  `PromptDataset` reads the same file, and its custom `reward_func` file is loaded as
  `RemoteRewardModel` loads it (`spec_from_file_location`).
- TRL 1.13.0: `--format trl-grpo` loads with `datasets`; one real `GRPOTrainer` step on the tiny
  model with rsynth's reward (slow).
"""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

from rsynth.data.schema import ERROR_SCHEMA, PROBLEM_SCHEMA
from tests.build_support import rsynth

ADD_SPEC = json.dumps({"tests": "assert add(1, 2) == 3", "style": "assert", "entry_point": "add"})
STATEMENT = "theorem two_eq : (1 : Nat) + 1 = 2"
PROBLEMS = [
    {"id": "m1", "domain": "math", "problem": "What is one half as a decimal?", "reference_answer": "0.5"},
    {"id": "m2", "domain": "math", "problem": "Compute 6 * 7.", "reference_answer": "42"},
    {"id": "m2", "domain": "math", "problem": "Compute 6 * 7.", "reference_answer": "42"},  # a second trace of m2
    {"id": "c1", "domain": "code", "problem": "Write add(a, b) returning a + b.", "reference_answer": ADD_SPEC},
    {"id": "l1", "domain": "lean", "problem": "1 + 1 = 2", "reference_answer": STATEMENT},
    {"id": "x1", "domain": "math", "problem": "No answer known.", "reference_answer": None},
]
RIGHT = {
    "m1": "Half of one is \\boxed{\\frac{1}{2}}.",
    "m2": "6 * 7 = 42, so \\boxed{42}.",
    "c1": "```python\ndef add(a, b):\n    return a + b\n```",
}
WRONG = {
    "m1": "\\boxed{0.25}",
    "m2": "The answer is \\boxed{43}",
    "c1": "```python\ndef add(a, b):\n    return a * b\n```",
}


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    from rsynth.data.shards import ShardSetWriter

    out = tmp_path_factory.mktemp("rl") / "problems"
    writer = ShardSetWriter(
        out, {"data": PROBLEM_SCHEMA, "errors": ERROR_SCHEMA}, stage="generate-problems", run_key="k"
    )
    for i, row in enumerate(PROBLEMS):
        writer.add("data", row, i)
    writer.close()
    return out


@pytest.fixture(scope="module")
def exports(problems, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rl-exports")
    files = {}
    for fmt, suffix in (("verl", ".parquet"), ("tulu", ".jsonl"), ("trl-grpo", ".jsonl")):
        files[fmt] = tmp / f"{fmt}{suffix}"
        res = rsynth("export", "-i", str(problems), "-o", str(files[fmt]), "--format", fmt)
        assert res.returncode == 0, res.stderr
        assert "merged" in res.stdout and "train with" in res.stdout
    return files


def _rows(path):
    import datasets

    loader = "parquet" if path.suffix == ".parquet" else "json"
    return datasets.load_dataset(loader, data_files=str(path), split="train")


def test_every_problem_once_and_rows_without_ground_truth_left_out(exports):
    rows = _rows(exports["trl-grpo"])
    assert [r["id"] for r in rows] == ["m1", "m2", "c1", "l1"]
    assert rows[2]["ground_truth"] == ADD_SPEC and rows[3]["ground_truth"] == STATEMENT  # tests and statement travel
    assert "\\boxed{}" in rows[0]["prompt"][0]["content"] and STATEMENT in rows[3]["prompt"][0]["content"]


def test_an_input_with_no_ground_truth_at_all_is_refused(tmp_path):
    from rsynth.data.shards import ShardSetWriter

    writer = ShardSetWriter(tmp_path / "p", {"data": PROBLEM_SCHEMA, "errors": ERROR_SCHEMA}, stage="s", run_key="k")
    writer.add("data", {"id": "a", "domain": "math", "problem": "p"}, 0)
    writer.close()
    res = rsynth("export", "-i", str(tmp_path / "p"), "-o", str(tmp_path / "x.parquet"), "--format", "verl")
    assert res.returncode == 2 and "no reference_answer" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def _verl_config(tmp_path):
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": 1024,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "cache_dir": str(tmp_path / "verl-cache"),
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://rsynth.rewards.verl",
                    "name": "compute_score",
                    "reward_kwargs": {"workers": 1},
                }
            },
        }
    )


def test_verl_reads_the_export_and_scores_with_rsynth(exports, tiny_model_dir, tmp_path):
    pytest.importorskip("verl", reason="needs verl 0.9.1 (make install: pip install --no-deps verl==0.9.1)")
    import verl
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import RLHFDataset

    assert verl.__version__ == "0.9.1"
    config = _verl_config(tmp_path)
    ds = RLHFDataset(
        data_files=str(exports["verl"]), tokenizer=AutoTokenizer.from_pretrained(tiny_model_dir), config=config
    )
    assert len(ds) == 4
    items = [ds[i] for i in range(len(ds))]
    assert [it["index"] for it in items] == [0, 1, 2, 3]
    assert items[0]["raw_prompt"][0]["role"] == "user" and items[0]["reward_model"]["style"] == "rule"
    compute_score = get_custom_reward_fn(config)  # verl's own loader, with reward_kwargs merged in
    for it in items:
        pid = it["extra_info"]["id"]
        if pid not in RIGHT:
            continue
        for text, want in ((RIGHT[pid], 1.0), (WRONG[pid], 0.0)):
            extra = {**it["extra_info"], "num_turns": None, "rollout_reward_scores": {}}  # what the manager adds
            got = compute_score(
                data_source=it["data_source"],
                solution_str=text,
                ground_truth=it["reward_model"]["ground_truth"],
                extra_info=extra,
            )
            assert got == want, (pid, text)


def test_verl_async_reward_batches_concurrent_calls(exports, tmp_path):
    """verl awaits a coroutine reward per sample; concurrent samples share verifier batches."""
    pytest.importorskip("verl", reason="needs verl 0.9.1 (make install)")
    import asyncio

    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = _verl_config(tmp_path)
    config.reward.custom_reward_function.name = "compute_score_async"
    fn = get_custom_reward_fn(config)

    async def run():
        calls = [
            fn(data_source="rsynth/math", solution_str=f"\\boxed{{{n}}}", ground_truth=str(n - n % 2), extra_info={})
            for n in range(10, 30)
        ]
        return await asyncio.gather(*calls)

    assert asyncio.run(run()) == [0.0 if n % 2 else 1.0 for n in range(10, 30)]


def test_verl_default_grader_against_rsynth():
    """verl's stock MATH grader compares normalised strings: it misses equal values written
    differently and pays a hedge whose last box is right; rsynth's reward does neither."""
    pytest.importorskip("verl", reason="needs verl 0.9.1 (make install)")
    from verl.utils.reward_score import default_compute_score

    from rsynth.rewards.verl import compute_score

    source = "HuggingFaceH4/MATH-500"
    for text, truth, verl_says, rsynth_says in [
        ("so \\boxed{\\sqrt{8}}", "2\\sqrt{2}", 0.0, 1.0),
        ("\\boxed{3.0}", "3", 0.0, 1.0),
        ("\\boxed{2} or maybe \\boxed{3}", "3", 1.0, 0.0),
        ("\\boxed{42}", "42", 1.0, 1.0),
    ]:
        assert (default_compute_score(source, text, truth), compute_score(source, text, truth)) == (
            verl_says,
            rsynth_says,
        )


def test_open_instruct_rlvr_transformation_accepts_the_tulu_rows(exports, tiny_model_dir):
    """open-instruct's rlvr_tokenize_v3: chat template over `messages` (no trailing assistant turn),
    `ground_truth` and `dataset` (the verifier name, matched lowercased) as strings it wraps in lists."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = _rows(exports["tulu"])
    assert {"messages", "ground_truth", "dataset"} <= set(rows.column_names)
    for row in rows:
        assert row["messages"] and row["messages"][-1]["role"] != "assistant"
        assert tok.apply_chat_template(row["messages"], add_generation_prompt=True)
        assert isinstance(row["ground_truth"], str) and row["dataset"] in ("math", "code", "lean")
    assert rows[0]["dataset"] == "math"  # open-instruct's own math verifier would take it


def _openrlhf_reward_func():
    """OpenRLHF's RemoteRewardModel loads `--remote_rm_url file.py` by path, as here."""
    import rsynth.rewards.openrlhf as module

    spec = importlib.util.spec_from_file_location("reward_func", module.__file__)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded.reward_func


def test_openrlhf_prompt_dataset_and_custom_reward_func(exports, tiny_model_dir):
    pytest.importorskip("openrlhf", reason="needs openrlhf 0.8.11 (make test: pip install --no-deps openrlhf==0.8.11)")
    import datasets
    from openrlhf.datasets import PromptDataset
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    strategy = SimpleNamespace(
        args=SimpleNamespace(input_key="messages", label_key="ground_truth", apply_chat_template=True),
        is_rank_0=lambda: True,
    )
    ds = PromptDataset(datasets.load_dataset("json", data_files=str(exports["tulu"]), split="train"), tok, strategy)
    assert len(ds) == 4
    prompts, labels = ds.prompts[:3], ds.labels[:3]
    ids = ["m1", "m2", "c1"]
    # OpenRLHF decodes prompt + response with skip_special_tokens=False: the eos token stays on
    queries = [p + RIGHT[i] + tok.eos_token for p, i in zip(prompts, ids)] + [
        p + WRONG[i] + tok.eos_token for p, i in zip(prompts, ids)
    ]
    out = _openrlhf_reward_func()(queries, prompts * 2, labels * 2)
    assert out["rewards"] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] and out["scores"] == out["rewards"]


def test_trl_reward_func_takes_what_grpo_passes(exports):
    """The keywords of TRL 1.13.0's _calculate_rewards: prompts, completions (chat messages for a
    conversational dataset), completion_ids, every other column, trainer_state, log_extra, log_metric."""
    from rsynth.rewards.trl import reward_func

    rows = _rows(exports["trl-grpo"]).select(range(3))
    logged = {}
    completions = [[{"role": "assistant", "content": RIGHT[r["id"]]}] for r in rows]
    completions += [[{"role": "assistant", "content": WRONG[r["id"]]}] for r in rows]
    inputs = list(rows) * 2
    keys = [k for k in inputs[0] if k not in ("prompt", "completion", "completion_ids")]
    kwargs = {k: [x[k] for x in inputs] for k in keys}
    got = reward_func(
        prompts=[x["prompt"] for x in inputs],
        completions=completions,
        completion_ids=[[1]] * 6,
        **kwargs,
        trainer_state=None,
        log_extra=lambda *a: None,
        log_metric=logged.__setitem__,
    )
    assert got == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert logged["rsynth/verified"] == 0.5


@pytest.mark.slow
def test_one_real_grpo_step_with_rsynth_reward(exports, tiny_model_dir, tmp_path):
    pytest.importorskip("trl", reason="needs the trl extra: pip install 'rsynth[trl]' (make test installs it)")
    import trl
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rsynth.rewards.trl import make_reward_func

    assert trl.__version__ == "1.13.0"
    rows = _rows(exports["trl-grpo"]).select(range(2))  # the two math prompts
    # a random model never answers right; the optional length term (completions differ in characters)
    # gives the group different rewards, so the GRPO advantage and the update are not zero
    reward = make_reward_func(workers=1, length_limit=10, length_penalty=1.0)
    seen: list[tuple[list, list[float]]] = []

    def rsynth_reward(prompts, completions, **kwargs):
        scores = reward(prompts=prompts, completions=completions, **kwargs)
        seen.append((completions, scores))
        return scores

    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = model.lm_head.weight.detach().clone()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[rsynth_reward],
        args=args,
        train_dataset=rows,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
    )
    trainer.train()
    assert seen and len(seen[0][0]) == 4 and all(isinstance(c, list) for c in seen[0][0])  # chat completions
    logged = next(h for h in trainer.state.log_history if "rewards/rsynth_reward/mean" in h)
    assert logged["rewards/rsynth_reward/mean"] == pytest.approx(sum(seen[0][1]) / 4)
    assert len(set(seen[0][1])) > 1
    assert not trainer.model.lm_head.weight.detach().equal(before)  # the step updated the policy
