"""`eval-labels` reads predictions the way ProcessBench's run_eval.py does (last `\\boxed{([^}]*)}`, `int()`,
Counter vote), takes plain {id, prediction} files, and reports a lenient reading as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsynth.stages.processbench_pred import lenient_prediction, official_answer, official_prediction
from tests.build_support import rsynth
from tests.paths import BENCHMARKS

PB = BENCHMARKS / "processbench_gsm8k.json"


@pytest.mark.parametrize(
    "critique, official, lenient",
    [
        ("The earliest error is \\boxed{2}.", 2, 2),
        ("\\boxed{-1}", -1, -1),
        ("\\boxed{ 3 }", 3, 3),
        ("\\boxed{+3}", 3, None),  # int() takes a sign; rsynth's reading does not
        ("\\boxed{paragraph_1}", None, 1),
        ("\\boxed{$2$}", None, 2),
        ("\\boxed{\\text{2}}", None, None),  # the official regex stops at the first }: "\\text{2" is no int
        ("first \\boxed{1}, finally \\boxed{4}", 4, 4),
        ("no box at all, paragraph 2 is wrong", None, None),
        ("\\boxed{2.0}", None, None),
    ],
    ids=[
        "plain",
        "minus-one",
        "spaces",
        "plus-sign",
        "paragraph-word",
        "dollars",
        "nested-braces",
        "last-box",
        "no-box",
        "float",
    ],
)
def test_official_and_lenient_readings(critique, official, lenient):
    assert official_prediction([critique]) == official
    assert lenient_prediction([critique]) == lenient


def test_official_vote_is_counter_most_common_first_seen_on_ties():
    assert official_prediction(["\\boxed{0}", "\\boxed{-1}", "no box"]) == 0
    assert official_prediction(["\\boxed{-1}", "\\boxed{0}"]) == -1  # rsynth's vote would say 0
    assert lenient_prediction(["\\boxed{-1}", "\\boxed{0}"]) == 0
    assert official_prediction(["\\boxed{x}", "\\boxed{x}", "\\boxed{2}"]) is None  # the winning string is no int
    assert official_answer("\\boxed{ 7 }") == "7"


def _scores(stdout: str) -> dict[str, str]:
    return {
        cells[0]: cells[1]
        for line in stdout.splitlines()
        if len(cells := [c.strip() for c in line.split("│") if c.strip()]) == 2
    }


def test_eval_labels_on_plain_prediction_files(tmp_path: Path):
    gold = json.loads(PB.read_text())
    errors = [g for g in gold if g["label"] != -1]
    correct = [g for g in gold if g["label"] == -1]
    # every erroneous item right, half the correct items right, one item with no prediction (null)
    rows = [{"id": g["id"], "prediction": g["label"]} for g in errors]
    rows += [{"id": g["id"], "prediction": -1 if i % 2 == 0 else 0} for i, g in enumerate(correct[:-1])]
    rows.append({"id": correct[-1]["id"], "prediction": None})
    want_ok = sum(1 for i in range(len(correct) - 1) if i % 2 == 0) / len(correct)
    jsonl = tmp_path / "pred.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    as_json = tmp_path / "pred.json"
    as_json.write_text(json.dumps(rows))
    for path in (jsonl, as_json):
        res = rsynth("eval-labels", "--pred", str(path), "--gold", str(PB), env={"COLUMNS": "200"})
        assert res.returncode == 0, res.stderr
        table = _scores(res.stdout)
        assert table["accuracy (erroneous)"] == "1.000" and table["accuracy (correct)"] == f"{want_ok:.3f}"
        words = " ".join(res.stdout.split())  # the table title wraps at the table's width
        assert table["missing predictions"] == "1" and "file labels" in words


def test_eval_labels_reads_generated_critiques_officially_unless_told(tmp_path: Path):
    gold = [g for g in json.loads(PB.read_text())][:4]
    texts = ["\\boxed{paragraph_%d}" % g["label"] if g["label"] >= 0 else "\\boxed{-1}" for g in gold]
    pred = tmp_path / "crit.jsonl"
    pred.write_text("".join(json.dumps({"id": g["id"], "generated_critique": t}) + "\n" for g, t in zip(gold, texts)))
    sub = tmp_path / "gold.json"
    sub.write_text(json.dumps(gold))
    official = _scores(rsynth("eval-labels", "--pred", str(pred), "--gold", str(sub), env={"COLUMNS": "200"}).stdout)
    lenient = rsynth(
        "eval-labels", "--pred", str(pred), "--gold", str(sub), "--reading", "lenient", env={"COLUMNS": "200"}
    )
    n_err = sum(g["label"] != -1 for g in gold)
    assert official["missing predictions"] == str(n_err)  # paragraph_N is no int(): no prediction
    assert _scores(lenient.stdout)["missing predictions"] == "0" and "LENIENT" in lenient.stdout


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"id": "a", "prediction": 1.5}\n', "row 1: field 'prediction'"),
        ('{"prediction": 1}\n', "row 1: field 'id'"),
        ('{"id": "a"}\n', "row 1: needs a field 'prediction'"),
        ('{"id": "a", "prediction": 1}\nnot json\n', "row 2: invalid JSON"),
    ],
    ids=["float-prediction", "no-id", "no-prediction", "bad-json"],
)
def test_bad_prediction_files_are_one_line_errors(tmp_path: Path, content: str, message: str):
    pred = tmp_path / "pred.jsonl"
    pred.write_text(content)
    res = rsynth("eval-labels", "--pred", str(pred), "--gold", str(PB))
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    bad = rsynth("eval-labels", "--pred", str(pred), "--gold", str(PB), "--reading", "generous")
    assert bad.returncode == 2 and "--reading 'generous'" in bad.stderr
