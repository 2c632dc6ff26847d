import pytest

from rsynth.annotators.base import label_trace
from rsynth.annotators.labels import derive_labels, first_error_of, hard_labels, min_value, parse_rule, progress
from rsynth.data.schema import LABEL_FIELDS

MC = [1.0, 0.5, 0.0, None]


def test_keys_are_exactly_the_schema_label_fields():
    row = derive_labels("m", MC, [8, 8, 8, None], [8, 4, 0, None], rule="he")
    assert list(row) == [name for name, _ in LABEL_FIELDS]
    assert row["label_method"] == "m:he"


# (MC values, rule, first error for the first_error rule, hard labels): unknown steps stay unknown
# except before a known first error, which is by definition good.
HARD = [
    ("he: any correct", MC, "he", None, [True, True, False, None]),
    ("threshold", MC, "threshold=0.6", None, [True, False, False, None]),
    ("threshold is inclusive", [0.5], "threshold=0.5", None, [True]),
    (
        "first_error: earlier unestimated steps good",
        [None, None, 0.0, None],
        "first_error",
        2,
        [True, True, False, False],
    ),
    ("first_error -1: all good", [None, 1.0], "first_error", -1, [True, True]),
]


@pytest.mark.parametrize(("mc", "rule", "first_error", "expected"), [c[1:] for c in HARD], ids=[c[0] for c in HARD])
def test_hard_labels(mc, rule, first_error, expected):
    assert hard_labels(mc, rule, first_error) == expected


def test_first_error_rule_needs_the_first_error():
    with pytest.raises(ValueError):
        hard_labels(MC, "first_error")


@pytest.mark.parametrize(("rule", "first_error"), [("he", 2), ("threshold=0.6", 1)])
def test_derived_first_error_follows_the_rule(rule, first_error):
    row = derive_labels("math_shepherd", MC, [8, 8, 8, None], [8, 4, 0, None], rule=rule)
    assert row["first_error"] == first_error and row["step_mc"] == MC and row["step_correct"] == [8, 4, 0, None]


@pytest.mark.parametrize(("labels", "expected"), [([True, None, False, False], 2), ([True, None, True], -1)])
def test_first_error_of(labels, expected):
    assert first_error_of(labels) == expected


@pytest.mark.parametrize(
    ("mc", "root_mc", "expected"),
    [
        ([0.75, None, 0.25, 0.0], 0.5, [0.25, None, None, -0.25]),
        ([0.75, 0.5], None, [None, -0.25]),
    ],
)
def test_progress_uses_root_mc_for_step_zero_and_none_where_unknown(mc, root_mc, expected):
    assert progress(mc, root_mc=root_mc) == expected


@pytest.mark.parametrize(("mc", "expected"), [([None, 0.5, 0.25], 0.25), ([None, None], None)])
def test_min_value_ignores_unestimated_steps(mc, expected):
    assert min_value(mc) == expected


@pytest.mark.parametrize("rule", ["soft", "threshold=1.5", "threshold=x", ""])
def test_bad_rules_rejected(rule):
    with pytest.raises(ValueError):
        parse_rule(rule)


def test_lengths_must_agree():
    with pytest.raises(ValueError):
        derive_labels("m", [1.0], [1, 1], [1], rule="he")


@pytest.mark.parametrize("correct", [True, False])
def test_final_step_takes_the_trace_verdict_with_k1(correct):
    t = label_trace("m", ("a", "b", "c"), "x", correct, [(4, 3), None], rule="he")
    assert t.labels["step_k"] == [4, None, 1]
    assert t.labels["step_mc"] == [0.75, None, float(correct)]
    assert t.labels["step_hard"][-1] is correct
    with pytest.raises(ValueError):
        label_trace("m", ("a", "b"), "x", correct, [], rule="he")
