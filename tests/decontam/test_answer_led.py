"""The answer-led rule (`ParaphraseDecider.answer_led`), as a table, without the embedding model.

An item with the row's answer is the same problem whatever the cosine when the quantities all but
agree (overlap >= `answer_overlap`), both signatures are strong (IDF mass >= `answer_mass`) and the
row asks what the item asks. The negatives are the 35 GSM8K-train questions that share their answer
with a bundled test item at overlap >= 0.8 (both signatures >= `min_mass`): all different problems
(tests/fixtures/decontam_probe_answer_led_negatives.jsonl, with the cosine MiniLM gave each pair).
"""

from __future__ import annotations

import json

import pytest

from rsynth.decontam.keys import AnswerComparer, bundled_keys
from rsynth.decontam.paraphrase import REMOVED, ParaphraseDecider, SemanticConfig
from rsynth.decontam.references import load_references
from rsynth.decontam.signature import Signature, question_reworded
from rsynth.errors import UserError
from tests.paths import FIXTURES

NEGATIVES = FIXTURES / "decontam_probe_answer_led_negatives.jsonl"


@pytest.fixture(scope="module")
def bundled():
    """(decider over all the bundled references, as the command weighs them, item index by id, item texts, answer keys)."""
    refs = load_references(["all"], [], "problem")
    texts = [t for r in refs for t in r.texts]
    at = {i: n for n, i in enumerate(i for r in refs for i in r.ids)}
    keys = {i: k for (_, i), k in bundled_keys().items()}
    return ParaphraseDecider(texts, SemanticConfig()), at, texts, keys


def _judge(bundled, row: str, answer: str, item_id: str, cosine: float):
    decider, at, texts, keys = bundled
    item = at[item_id]
    same = AnswerComparer().compare([(answer, keys[item_id].answer)])[0]
    sig = Signature.of(row)
    asked = not question_reworded(row, texts[item])
    return decider, sig, item, same, asked, decider.judge_pair(sig, item, cosine, same, None, 0.0, asked)


# rephrasings from the tuned probe parts, with the cosine MiniLM gives them (under every other floor)
@pytest.mark.parametrize(
    ("row", "answer", "item_id", "cosine"),
    [
        (
            "Take the square root of two point five squared minus zero point seven squared, and divide it by "
            "two point seven minus two point five. What number do you get?",
            "12",
            "math500-52",
            0.46,
        ),
    ],
)
def test_an_equal_answer_with_agreeing_strong_quantities_decides_whatever_the_cosine(
    bundled, row, answer, item_id, cosine
):
    decider, sig, item, same, asked, ev = _judge(bundled, row, answer, item_id, cosine)
    assert same is True and asked
    assert ev is not None and ev.rule == "same-answer"
    # without the asked-clause comparison the pair is left to the cosine rules, which say nothing here
    assert decider.judge_pair(sig, item, cosine, same, None, 0.0, None) is None
    # another answer is never the same problem, however the quantities agree
    assert decider.judge_pair(sig, item, cosine, False, None, 0.0, asked) is None


def test_gsm8k_train_questions_sharing_answer_and_quantities_are_not_removed_by_it(bundled):
    rows = [json.loads(line) for line in NEGATIVES.open()]
    assert len(rows) == 35
    fired = []
    for r in rows:
        decider, sig, item, same, asked, ev = _judge(bundled, r["problem"], r["answer"], r["item_id"], 0.3)
        assert same is True  # each shares its answer with the item
        overlap = decider.weights.overlap(sig, decider.refs[item])
        if decider.answer_led(sig, item, overlap, asked) or (ev is not None and ev.rule in REMOVED):
            fired.append(r["id"])
    assert fired == []


def test_a_weak_signature_or_another_asked_clause_is_not_enough(bundled):
    decider, at, texts, _ = bundled
    # heldout2's GSM8K-train control: every quantity of gsm8k-test-685 (4, 2, 3, 2 ...), its answer 14,
    # a weak signature (mass 0.81) and another question
    row = json.loads(NEGATIVES.read_text().splitlines()[26])
    assert row["item_id"] == "gsm8k-test-685"
    sig, item = Signature.of(row["problem"]), at["gsm8k-test-685"]
    overlap = decider.weights.overlap(sig, decider.refs[item])
    assert overlap >= SemanticConfig().answer_overlap
    assert not decider.answer_led(sig, item, overlap, True)  # mass under answer_mass
    strong = Signature.of(texts[item])
    assert decider.answer_led(strong, item, 1.0, True) == (decider.weights.mass(strong) >= 1.2)
    assert not decider.answer_led(strong, item, 1.0, False)  # the asked clause differs


@pytest.mark.parametrize(("field", "value"), [("answer_overlap", 0.0), ("answer_overlap", 1.5), ("answer_mass", -1.0)])
def test_settings_are_checked(field, value):
    with pytest.raises(UserError, match="--semantic-answer-"):
        SemanticConfig(**{field: value})
