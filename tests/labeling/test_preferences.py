"""The one meaning of a preference: decision, margin scale, weight, policies, content hash."""

from __future__ import annotations

import pytest

from labeling import preferences
from labeling.preferences import Completion, Pair, Votes, decide, pairs_of


def votes(*items: tuple[str, int | None]) -> Votes:
    return Votes.of(items)


@pytest.mark.parametrize(
    ("cast", "outcome", "share"),
    [
        ([("a", 2)], "a", 1.0),
        ([("a", 2), ("a", 1), ("b", 4)], "a", 0.6667),
        ([("a", 1), ("b", 4)], "undecided", 0.5),  # strengths never break a shared top
        ([("a", 3), ("tie", None)], "undecided", 0.5),
        ([("tie", None), ("tie", None), ("a", 4)], "tie", 0.6667),
        ([("both_bad", None), ("both_bad", None), ("b", 2)], "both_bad", 0.6667),
        ([("b", 1), ("b", 1), ("a", 4), ("tie", None)], "b", 0.5),
    ],
)
def test_strict_plurality_decides(cast: list, outcome: str, share: float) -> None:
    decision = decide(votes(*cast))
    assert (decision.outcome, decision.share) == (outcome, share)


def test_margin_scale_is_the_mean_winning_strength_on_zero_to_one() -> None:
    assert [preferences.strength_margin(s) for s in (1, 2, 3, 4)] == [0, 1 / 3, 2 / 3, 1]
    assert preferences.strength_margin(None) is None
    with pytest.raises(ValueError, match="1-4"):
        preferences.strength_margin(5)
    assert decide(votes(("a", 4), ("a", 2), ("b", 4))).margin == 0.6667  # mean of 1 and 1/3
    assert decide(votes(("b", None))).margin == 0.0  # no strength recorded: no margin
    assert decide(votes(("tie", None))).margin == 0.0


def test_agreement_pairs() -> None:
    decision = decide(votes(("a", 2), ("a", 2), ("b", 1), ("tie", None)))
    assert (decision.agreeing_pairs, decision.pairs, decision.unanimous) == (1, 6, False)
    assert decide(votes(("a", 2))).unanimous


def test_pairs_under_the_tie_and_both_bad_policies() -> None:
    won = decide(votes(("b", 3), ("b", 3), ("a", 1)))
    assert pairs_of(won) == (Pair("b", 0.6667, 0.6667),)
    assert pairs_of(won, weight=0.25) == (Pair("b", 0.6667, 0.25),)
    tie = decide(votes(("tie", None)))
    assert pairs_of(tie) == ()
    assert pairs_of(tie, ties="split") == (Pair("a", 0.0, 0.5), Pair("b", 0.0, 0.5))
    both_bad = decide(votes(("both_bad", None)))
    assert pairs_of(both_bad, ties="split") == ()
    assert len(pairs_of(both_bad, both_bad="split")) == 2
    assert pairs_of(decide(votes(("a", 1), ("b", 1))), ties="split", both_bad="split") == ()
    assert Pair("a", 0, 1).rejected == "b"


def test_unpaired_completions_for_kto() -> None:
    won = decide(votes(("a", 2)))
    assert preferences.completions_of(won) == (
        Completion("a", True, 1.0),
        Completion("b", False, 1.0),
    )
    both_bad = decide(votes(("both_bad", None)))
    assert preferences.completions_of(both_bad) == ()
    assert preferences.completions_of(both_bad, both_bad="split") == (
        Completion("a", False, 1.0),
        Completion("b", False, 1.0),
    )
    assert preferences.completions_of(decide(votes(("tie", None)))) == ()


def test_the_hash_is_over_content_in_order() -> None:
    row = {"prompt": [{"role": "user", "content": "Hi?"}], "chosen": "Hello", "rejected": "Go"}
    one = {**row, "margin": 0.3333, "weight": 1.0}
    assert preferences.rows_hash([one]) == preferences.rows_hash([dict(one)])
    assert preferences.rows_hash([one]) != preferences.rows_hash([{**one, "margin": 0.6667}])
    assert preferences.rows_hash([one]) != preferences.rows_hash([{**one, "chosen": "Hey"}])
    swapped = {**one, "chosen": "Go", "rejected": "Hello"}
    assert preferences.rows_hash([one, swapped]) != preferences.rows_hash([swapped, one])
    unpaired = {"prompt": row["prompt"], "completion": "Hello", "label": True, "weight": 1.0}
    assert preferences.rows_hash([unpaired]) != preferences.rows_hash(
        [{**unpaired, "label": False}]
    )
