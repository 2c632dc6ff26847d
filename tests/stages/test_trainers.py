"""Exports that PRM trainers accept as they are, checked with the trainers' own code.

TRL: 1.13.0's PRMTrainer (the last TRL that has it) trains two optimizer steps of a tiny random
token classifier on `rsynth export --format trl`. OpenRLHF: the real `ProcessRewardDataset` of
openrlhf 0.8.11 (the last release that has it; installed with --no-deps, docs/trainers.md says
why) turns `--format openrlhf` rows into labels at exactly one placeholder per step.
Both packages are installed by `make test`; a test skips, saying so, only where they are absent.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from rsynth.data.shards import iter_split_rows
from tests.build_support import rsynth
from tests.export_support import labelled_output

PLACEHOLDER = "@"  # one token of the tiny tokenizer, also in context


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, tiny_engine):
    return labelled_output(tmp_path_factory.mktemp("trainers"), tiny_engine)


def _token_classifier(model_dir: str, out):
    """A random 2-label Llama token classifier on the tiny model's config and tokenizer (no hub)."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForTokenClassification

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(model_dir, num_labels=2)
    return LlamaForTokenClassification(config), AutoTokenizer.from_pretrained(model_dir)


def test_trl_prm_trainer_trains_on_the_export(labelled, tiny_model_dir, tmp_path):
    pytest.importorskip(
        "trl", reason="the TRL trainer test needs the trl extra: pip install 'rsynth[trl]' (make test installs it)"
    )
    import datasets
    import trl
    from trl.experimental.prm import PRMConfig, PRMTrainer

    assert trl.__version__ == "1.13.0"
    out = tmp_path / "trl.jsonl"
    res = rsynth("export", "-i", str(labelled), "-o", str(out), "--format", "trl")
    assert res.returncode == 0, res.stderr
    assert "PRMConfig(step_separator='\\n')" in res.stdout
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert len(ds) == 6 and all(len(r["completions"]) == len(r["labels"]) for r in ds)
    model, tok = _token_classifier(tiny_model_dir, tmp_path)
    args = PRMConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = PRMTrainer(model=model, args=args, processing_class=tok, train_dataset=ds)
    # every step's label sits on the separator's last token: one labelled position per step
    first = trainer.train_dataset[0]
    assert sum(label != -100 for label in first["labels"]) == len(ds[0]["completions"])
    result = trainer.train()
    assert result.global_step == 2 and math.isfinite(result.training_loss)


def test_openrlhf_process_reward_dataset_reads_the_export(labelled, tiny_model_dir, tmp_path):
    pytest.importorskip("openrlhf", reason="needs openrlhf 0.8.11 (make test: pip install --no-deps openrlhf==0.8.11)")
    import datasets
    from openrlhf.datasets import ProcessRewardDataset
    from transformers import AutoTokenizer

    out = tmp_path / "openrlhf.jsonl"
    res = rsynth(
        "export",
        "-i",
        str(labelled),
        "-o",
        str(out),
        "--format",
        "openrlhf",
        "--placeholder",
        PLACEHOLDER,
        "--tokenizer",
        tiny_model_dir,
    )
    assert res.returncode == 0, res.stderr
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    strategy = SimpleNamespace(
        args=SimpleNamespace(
            input_key="input", label_key="value", placeholder_token=PLACEHOLDER, reward_tokens=["+", "-"]
        )
    )
    prd = ProcessRewardDataset(ds, tok, max_length=4096, strategy=strategy)
    plus, minus = tok.encode("+", add_special_tokens=False)[0], tok.encode("-", add_special_tokens=False)[0]
    for i, row in enumerate(ds):
        _, _, labels = prd[i]
        marked = [int(x) for x in labels[0] if x != -100]
        assert len(marked) == len(row["value"])  # one label per step, none lost to a split placeholder
        assert marked == [plus if v == "+" else minus for v in row["value"]]
    assert [[v == "+" for v in r["value"]] for r in ds] == [t["step_hard"] for t in iter_split_rows(labelled)]
    batch = prd.collate_fn([prd[0], prd[1]])
    assert batch[0].shape == batch[2].shape


def test_openrlhf_refuses_a_placeholder_that_is_not_one_token(labelled, tiny_model_dir, tmp_path):
    # Math-Shepherd's `ки` is several tokens here (as for SmolLM2): OpenRLHF would assert deep in training
    res = rsynth(
        "export",
        "-i",
        str(labelled),
        "-o",
        str(tmp_path / "o.jsonl"),
        "--format",
        "openrlhf",
        "--tokenizer",
        tiny_model_dir,
    )
    assert (
        res.returncode == 2
        and res.stderr.startswith("error: placeholder 'ки' is")
        and len(res.stderr.strip().splitlines()) == 1
    )
    assert not (tmp_path / "o.jsonl").exists()
    from rsynth.data.formats import ExportError
    from rsynth.stages.export import export_file

    with pytest.raises(ExportError, match="is 2 tokens of"):
        export_file(
            labelled, tmp_path / "o.jsonl", "openrlhf", "hard", "t", placeholder="<|end|>x", tokenizer=tiny_model_dir
        )
    # "in" is one token alone, but " in" (after the step's space) is another token: OpenRLHF would find no label position
    with pytest.raises(ExportError, match="tokenises to its id 0 times in context"):
        export_file(labelled, tmp_path / "o.jsonl", "openrlhf", "hard", "t", placeholder="in", tokenizer=tiny_model_dir)
    with pytest.raises(ExportError, match="needs --tokenizer"):
        export_file(labelled, tmp_path / "o.jsonl", "openrlhf", "hard", "t")


def test_openrlhf_soft_labels_are_a_list_of_floats(labelled, tiny_model_dir, tmp_path):
    from rsynth.data.formats import ExportError
    from rsynth.stages.export import export_file

    out = tmp_path / "soft.jsonl"
    kw = dict(step_separator="\\n\\n", placeholder=PLACEHOLDER, tokenizer=tiny_model_dir)
    with pytest.raises(
        ExportError, match="has no MC estimate"
    ):  # OmegaPRM leaves steps unestimated: no invented values
        export_file(labelled, out, "openrlhf", "soft", "t", **kw)
    with pytest.raises(ExportError, match="cannot hold a masked"):  # OpenRLHF has no mask for a step label
        export_file(labelled, out, "openrlhf", "soft", "t", unestimated="mask", **kw)
    counts = export_file(labelled, out, "openrlhf", "soft", "t", unestimated="drop", **kw)
    unestimated = sum(None in t["step_mc"] for t in iter_split_rows(labelled))
    assert counts["rows with unestimated steps (dropped)"] == unestimated > 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == counts["rows written"] > 0
    assert all(isinstance(v, float) for r in rows for v in r["value"])
    assert all(r["input"].count(PLACEHOLDER) == len(r["value"]) and f"{PLACEHOLDER}\n\n" in r["input"] for r in rows)
