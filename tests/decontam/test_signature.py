"""Quantity signatures and the paraphrase decision rules, without the embedding model (fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsynth.decontam.paraphrase import ParaphraseDecider, SemanticConfig
from rsynth.decontam.signature import Signature, SignatureIndex, ask, asks_agree, numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She has three cats and twenty-five dogs.", ["3", "25"]),
        ("It costs $1,000 or 1{,}000 dollars.", ["1000", "1000"]),
        ("Two hundred and ten people, a dozen eggs, twice a day.", ["210", "12", "2"]),
        ("Pay 2.50 now and 50% later, or 50 percent.", ["5/2", "1/2", "1/2"]),
        (r"Compute $\frac{3}{4} + \dfrac{1}{2}$ and 3/4.", ["3/4", "1/2", "3/4"]),
        (r"If $f(-2) = x^{10} - 7$, find $f(3)$.", ["-2", "10", "7", "3"]),
        ("Half of the 16 apples.", ["1/2", "16"]),
    ],
)
def test_numbers_are_normalised_as_a_rewrite_would_spell_them(text, expected):
    assert numbers(text) == expected


def test_rewording_keeps_the_signature_and_a_template_sibling_does_not():
    item = Signature.of(
        "Tom plants 10 trees a year. He chops down 2 a year and starts with 50. After 10 years 30% die. How many trees are left?"
    )
    para = Signature.of(
        "Each year Tom plants ten trees and cuts down two. Starting from fifty trees, after ten years thirty percent of them die. How many trees remain?"
    )
    sibling = Signature.of(
        "Tom plants 12 trees a year. He chops down 3 a year and starts with 40. After 8 years 25% die. How many trees are left?"
    )
    weights = SignatureIndex([item, sibling, Signature.of("2 apples and 3 pears"), Signature.of("10 boxes of 2")])
    assert para.quantities == item.quantities
    assert weights.overlap(para, item) == pytest.approx(1.0)
    assert weights.overlap(sibling, item) < 0.3


def test_rare_numbers_weigh_more_than_common_ones():
    refs = [Signature.of(f"{n} and 2") for n in range(3, 40)] + [Signature.of("2024 and 7")]
    weights = SignatureIndex(refs)
    assert weights.weight("2024") > 2 * weights.weight("2")


def test_code_signature_is_the_function_not_its_examples():
    prompt = 'def sum_to_n(n: int):\n    """Sums numbers from 1 to n.\n    >>> sum_to_n(30)\n    465\n    >>> sum_to_n(5)\n    15\n    """\n'
    mbpp = '"""\nWrite a function to find the shared elements.\nassert set(similar_elements((3, 4), (4, 5))) == set((4,))\n"""\n'
    assert Signature.of(prompt).quantities == ("1", "fn:sum_to_n")
    assert Signature.of(mbpp).quantities == ("fn:similar_elements",)


def test_the_asked_quantity_tells_another_question_about_the_same_story():
    item = Signature.of(
        "Her ducks lay 16 eggs a day and she sells them for $2 each. How much money does she make every day?"
    )
    para = Signature.of("Each day 16 eggs are laid and each sells at $2. What are her daily earnings in dollars?")
    other = Signature.of(
        "Her ducks lay 16 eggs a day and she sells them for $2 each. How many eggs do the ducks lay in a week?"
    )
    assert ask("Janet is 5. How old will she be in 3 years?") == frozenset({"old", "year"})
    assert asks_agree(para, item)
    assert not asks_agree(other, item)


REFS = [
    "A farmer has 17 cows and buys 23 more, then sells 9. How many cows does he have now?",
    "Alice and Bob flip coins in turn; the first heads wins. What is the probability that Alice wins?",
    "Find the remainder when 2024 is divided by 7.",
]


@pytest.fixture(scope="module")
def decider() -> ParaphraseDecider:
    return ParaphraseDecider(REFS, SemanticConfig())


def _sims(item: int, cosine: float) -> np.ndarray:
    sims = np.full(len(REFS), 0.1, dtype=np.float32)
    sims[item] = cosine
    return sims


def test_same_quantities_and_same_story_is_a_paraphrase(decider):
    text = "Starting with seventeen cows, a farmer purchases 23 more and sells 9. How many cows remain?"
    sig = Signature.of(text)
    need, by_sig = decider.gate([sig], [text])
    assert need[0] and by_sig[0].tolist() == [0]
    ev = decider.decide(sig, _sims(0, 0.8), decider.candidates(_sims(0, 0.8), by_sig[0]))
    assert (ev.item, ev.rule) == (0, "paraphrase") and ev.overlap == pytest.approx(1.0)
    # the same numbers in an unrelated story (low cosine) are a coincidence, not a paraphrase
    assert decider.decide(sig, _sims(0, 0.3), decider.candidates(_sims(0, 0.3), by_sig[0])) is None


def test_a_clearly_nearest_item_with_the_same_quantities_needs_less_cosine(decider):
    """A new story or a terse restatement keeps the quantities and lowers the cosine; when the item is
    still the row's nearest reference by a margin, that is the same problem."""
    sig = Signature.of("Seventeen cows, 23 bought, 9 sold: how many cows?")
    near = np.array([0.68, 0.5, 0.45], dtype=np.float32)  # nearest by 0.18
    assert decider.decide(sig, near, [0]).rule == "paraphrase"
    crowded = np.array([0.68, 0.66, 0.45], dtype=np.float32)  # another item nearly as near
    assert decider.decide(sig, crowded, [0]) is None
    assert decider.decide(sig, np.array([0.55, 0.3, 0.2], dtype=np.float32), [0]) is None  # under the floor


def test_template_sibling_is_kept_and_not_even_embedded(decider):
    text = "A farmer has 31 cows and buys 12 more, then sells 5. How many cows does he have now?"
    sig = Signature.of(text)
    need, by_sig = decider.gate([sig], [text])
    assert not need[0]  # informative quantities that agree with no item: no embedding needed
    ev = decider.decide(sig, _sims(0, 0.97), decider.candidates(_sims(0, 0.97), by_sig[0]))
    assert ev.rule == "near-miss"  # had it been embedded: listed for review, never removed


def test_partly_agreeing_or_quantity_free_pairs_are_uncertain(decider):
    text = "A farmer has 17 cows and buys 23 more, then sells 4. How many cows does he have now?"
    partly = Signature.of(text)
    need, by_sig = decider.gate([partly], [text])
    assert need[0]  # uncertain band, and the same words: embedded
    assert decider.decide(partly, _sims(0, 0.95), decider.candidates(_sims(0, 0.95), by_sig[0])).rule == "uncertain"
    text = "Players alternate coin flips and whoever gets heads first wins; what is the chance the first player wins?"
    plain = Signature.of(text)
    assert decider.gate([plain], [text])[0][0]  # nothing to compare: embed it
    assert (
        decider.decide(plain, _sims(1, 0.85), decider.candidates(_sims(1, 0.85), np.zeros(0, dtype=np.int64))).rule
        == "uncertain"
    )
    assert (
        decider.decide(plain, _sims(1, 0.95), decider.candidates(_sims(1, 0.95), np.zeros(0, dtype=np.int64))).rule
        == "near-copy"
    )


def test_same_numbers_in_another_story_are_screened_out_before_the_model(decider):
    """The lexical screen: quantities that agree with an item but no shared content word is no
    rewrite of it, so the row is kept without an embedding; a rewrite keeps the names and objects."""
    other = (
        "A library lends 17 novels on Monday and 23 on Tuesday, then 9 are returned late. How many novels were lent?"
    )
    rewrite = (
        "There are 17 cows on a farm. The farmer buys another 23 and later sells 9 of them. How many cows are left?"
    )
    need, by_sig = decider.gate([Signature.of(other), Signature.of(rewrite)], [other, rewrite])
    assert need.tolist() == [False, True] and by_sig[0].tolist() == [0]  # the signature alone would embed both
    unscreened = ParaphraseDecider(REFS, SemanticConfig(lexical=0, lexical_band=0))
    assert unscreened.gate([Signature.of(other)], [other])[0].tolist() == [True]
    # a short item and a short row (few content words) cannot be screened: always embedded
    short = ParaphraseDecider(["If $2^8=4^x$, what is the value of $x$?"], SemanticConfig())
    row = "Find $x$ given that $4^x = 2^8$."
    assert short.gate([Signature.of(row)], [row])[0].tolist() == [True]


def test_evidence_is_serialisable(decider):
    text = "What is the remainder of 2024 divided by 7?"
    sig = Signature.of(text)
    need, by_sig = decider.gate([sig], [text])
    ev = decider.decide(sig, _sims(2, 0.9), decider.candidates(_sims(2, 0.9), by_sig[0]))
    assert ev.rule == "paraphrase"
    assert json.loads(json.dumps(ev.as_struct()))["item_signature"] == "{2024, 7} asks: divided remainder"


def test_semantic_config_documents_every_field():
    assert all(SemanticConfig.help().values())


def test_an_ngram_match_with_other_quantities_is_a_template_sibling(decider):
    sibling = Signature.of("A farmer has 31 cows and buys 12 more, then sells 5. How many cows does he have now?")
    truncated = Signature.of("A farmer has 17 cows and buys 23 more")
    assert decider.template_sibling(sibling, 0).rule == "template-sibling"
    assert decider.template_sibling(truncated, 0) is None  # a truncated copy keeps its numbers
    assert decider.template_sibling(Signature.of("A farmer has cows."), 0) is None  # nothing to compare


def test_weak_signatures_need_a_close_story(decider):
    refs = [
        "A regular pentagon is rotated about its center. What is the least rotation in degrees that maps it onto itself?"
    ]
    weak = ParaphraseDecider(refs + REFS, SemanticConfig())
    para = Signature.of("By how many degrees at least must a regular pentagon turn about its center to land on itself?")
    sibling = Signature.of(
        "A regular hexagon is rotated about its center. What is the least rotation in degrees that maps it onto itself?"
    )
    sims = np.array([0.85, 0.1, 0.1, 0.1], dtype=np.float32)
    assert weak.decide(para, sims, weak.candidates(sims, np.zeros(0, dtype=np.int64))).rule == "paraphrase"  # {5} = {5}
    assert weak.decide(sibling, np.array([0.97, 0.1, 0.1, 0.1], dtype=np.float32), [0, 1, 2, 3]).rule == "near-miss"
    assert weak.decide(para, np.array([0.7, 0.1, 0.1, 0.1], dtype=np.float32), np.zeros(0, dtype=np.int64)) is None


def test_function_names_in_prose_and_ordinals():
    assert Signature.of(
        "Implement `has_close_elements(numbers, threshold)` returning True if two numbers are close."
    ).quantities == ("2", "fn:has_close_elements")
    assert Signature.of(r"Compute \log_x(y) at the third step.").quantities == ("3",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"band": 0.0}, "--semantic-band 0.0: expected a number in (0, 1]"),
        ({"lexical": 1.5}, "--semantic-lexical 1.5: expected a number in [0, 1]"),
        ({"top_k": 0}, "--semantic-top-k must be >= 1"),
    ],
)
def test_semantic_config_names_the_flag_of_a_bad_value(kwargs, message):
    from rsynth.errors import UserError

    with pytest.raises(UserError) as err:
        SemanticConfig(**kwargs)
    assert str(err.value).startswith(message)


def test_judge_params_name_the_flag_of_a_bad_engine():
    from rsynth.decontam.params import JudgeParams
    from rsynth.errors import UserError

    with pytest.raises(UserError, match="--judge-engine 'tpu': expected one of"):
        JudgeParams(judge_engine="tpu")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Tracy had a 48-inch wire and cut it into pieces half a foot long.",
            "A wire 4 feet long was cut into pieces 6 inches long.",
        ),
        ("He sails for 4 hours and rests for 30 minutes.", "He sails for 240 minutes and rests for half an hour."),
        (
            "Alex weighs 2 pounds less, and the jug holds 6 liters.",
            "Alex weighs 32 ounces less, and the jug holds 6000 millilitres.",
        ),
        ("A walk of 9 kilometres.", "A walk of 9000 metres."),
        (
            "It costs one and a half times as much; three quarters are sold.",
            "It costs 1.5 times as much; 3/4 are sold.",
        ),
        ("Two thirds of the class and a third of the teachers.", "2/3 of the class and 1/3 of the teachers."),
        # every spoken denominator, not only the common ones (the ordinal alone stays an ordinal)
        ("A seventh of the rooms and two ninths of the floors.", "1/7 of the rooms and 2/9 of the floors."),
        ("Twelve twentieths, three hundredths, five twelfths.", "12/20, 3/100, 5/12."),
        ("On the eleventh floor, one thousandth of it.", "On floor 11, 1/1000 of it."),
        ("He watches TV for a couple of hours.", "He watches TV for 2 hours."),
        ("Only fourth-fifth of the maximum, and one-fifth of it.", "Only 4/5 of the maximum, and 1/5 of it."),
        # compounds are one quantity: the total, as a rewrite into one unit states it
        ("The walk takes her 2 hours and 24 minutes.", "The walk takes her 144 minutes."),
        ("It took 2 h 24 min.", "It took 8640 seconds."),
        ("He is 5 feet 3 inches tall.", "He is 63 inches tall."),
        ("Subtract zero point seven from two point five.", "Subtract 0.7 from 2.5."),
        # a percentage change is also a factor; digits named in the plural
        ("Red ties cost 50% more than blue ones.", "Red ties cost 1.5 times what blue ones do, 1/2 more."),
        ("Its digits are all zeros and twos.", "Its digits are all 0 and 2."),
    ],
)
def test_units_and_number_words_a_rewrite_converts(a, b):
    assert sorted(numbers(a)) == sorted(numbers(b))


def test_a_list_of_durations_is_not_one_compound():
    assert numbers("Runs of 3 hours, 2 hours and 1 hour.") == ["10800", "7200", "3600"]
    assert numbers("From 2 hours to 30 minutes.") == ["7200", "1800"]


def test_rates_are_not_converted():
    assert numbers("She earns $10 a day and eats twice a day.") == ["10", "2"]


def test_a_copied_setup_with_a_reworded_question_is_told_apart():
    from rsynth.decontam.signature import question_reworded

    item = (
        "Jordan plays video games for 2 hours every day. He also has a part-time job where he earns $10 an hour. "
        "How much money would Jordan earn in one week if he spent his video game time working instead?"
    )
    setup = item.rsplit(". ", 1)[0] + "."
    # synonyms folded in the asked-for quantity (spend ~ dollar, hour ~ time) would hide this one
    assert question_reworded(setup + " How many hours does Jordan spend on video games in one week?", item)
    assert not question_reworded(item, item)  # the item's own question
    assert not question_reworded(setup, item)  # a truncated copy asks nothing of its own
    assert not question_reworded("Q: " + item + "\nA:", item)


def test_the_asked_clause_not_the_copied_condition_is_compared():
    from rsynth.decontam.signature import question_reworded

    item = "Each flan takes 3 eggs. If Sandra must make 15 flans for the fundraiser, how many times must she babysit?"
    row = "Each flan takes 3 eggs. If Sandra must make 15 flans for the fundraiser, how many eggs does she need in all?"
    assert question_reworded(row, item) and not question_reworded(item, item)


def test_a_subscripted_log_in_plain_text_is_no_function_name():
    """`log_x(y^x)` written without LaTeX is maths, not a code task's entry point (it made a maths row
    look like code and added a quantity its item lacks); a snake_case call in prose still is one."""
    from rsynth.decontam.signature import functions

    assert functions("x, y > 1 real with log_x(y^x) = log_y(x^(4y)) = 10. xy = ?") == []
    assert Signature.of("log_2(x) + ln_b(3) = 7").quantities == ("2", "3", "7")
    assert functions("Write sin_wave(x) for a plotting helper.") == ["sin_wave"]


SPLIT = "A farmer has 17 cows, buys 23 more, then sells 9: 5 on Monday, 4 later. How many cows?"
ONE_NUMBER = "A farmer starts out with 17 cows. After his purchases and sales, how many cows?"


@pytest.mark.parametrize(
    ("text", "sims", "rule"),
    [
        # the row states more than the item (a count split in two), its quantities include the item's,
        # and the item is clearly the nearest; not when another item is about as near (the judge's case)
        (SPLIT, [0.8, 0.3, 0.2], "paraphrase"),
        (SPLIT, [0.8, 0.78, 0.2], "uncertain"),
        # a number changed (each side has one the other lacks): a template sibling, never removed here
        ("A farmer has 17 cows and buys 23 more, then sells 4. How many cows?", [0.95, 0.3, 0.2], "uncertain"),
        # a number the item has once, twice: counted with repeats, not nested
        ("A farmer has 17 cows and sells 17. How many cows?", [0.95, 0.3, 0.2], "uncertain"),
        # a rewrite that keeps only one informative number of the item's, item close and far nearest;
        # not when another item is within CLEAR_MARGIN, nor when the story is not close
        (ONE_NUMBER, [0.85, 0.3, 0.2], "paraphrase"),
        (ONE_NUMBER, [0.85, 0.7, 0.2], "uncertain"),
        (ONE_NUMBER, [0.78, 0.3, 0.2], "uncertain"),
    ],
)
def test_partly_agreeing_quantities_are_the_item_only_when_nested_and_clearly_nearest(decider, text, sims, rule):
    sig = Signature.of(text)
    overlap = decider.weights.overlap(sig, decider.refs[0])
    assert decider.config.band <= overlap < decider.config.agree
    assert decider.decide(sig, np.array(sims, dtype=np.float32), [0]).rule == rule


def test_a_program_that_passes_a_retrieved_items_tests_is_that_task_at_any_cosine(decider):
    """Execution runs only on retrieved code items (the `--semantic-code-runs` nearest, or from the
    floor), so a pass is the evidence whatever the cosine; a failure only counts near the item."""
    sig = Signature.of("keep_gt_zero(xs): the elements of xs that are > 0, order kept.")
    assert decider.judge_pair(sig, 1, 0.37, execution=True).rule == "same-behaviour"
    assert decider.judge_pair(sig, 1, 0.37, execution=False) is None
    with pytest.raises(Exception, match="--semantic-code-runs -1"):
        SemanticConfig(code_runs=-1)


def test_a_new_story_around_all_the_same_quantities_needs_fewer_shared_words(decider):
    """The lexical screen asks half the word cosine of a row whose informative quantities all agree
    with an item's: a new story keeps few of the item's words (here 0.12 < 0.2)."""
    story = "Seventeen goats, 23 bought, 9 sold by the farmer. Goats remaining?"
    sibling = "Seventeen goats, 23 bought, 4 sold by the farmer. Goats remaining?"  # a number changed
    unrelated = "Seventeen goats on a ranch, 23 bought, 9 sold: the rancher counts his goats at the fair."
    lex, _ = decider.lexical.similarity([story])
    assert decider.config.lexical / 2 <= lex[0, 0] < decider.config.lexical
    need, _ = decider.gate([Signature.of(t) for t in (story, sibling, unrelated)], [story, sibling, unrelated])
    assert need.tolist() == [True, False, False]


def test_a_lone_shared_number_must_be_informative_on_its_own():
    """`_inside`: one side's numbers among the other's is evidence only when what they share is rare
    (the fifth integer with three divisors against the second with five share a common 5)."""
    from rsynth.decontam.paraphrase import _inside
    from rsynth.decontam.signature import SignatureIndex

    refs = [Signature.of(t) for t in ("5 apples", "5 pears and 3 plums", "5 figs", "5 kiwis", "284 and 12")]
    weights = SignatureIndex(refs)
    assert _inside(Signature.of("the sum for 284"), refs[4], weights, 0.8)
    assert not _inside(Signature.of("the fifth one"), refs[1], weights, 0.8)  # a common 5 inside {3, 5}
    assert not _inside(Signature.of("284 and 13"), refs[4], weights, 0.8)  # each has one the other lacks
