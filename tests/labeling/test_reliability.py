"""Annotator reliability (``labeling.reliability``) and the reliability-weighted decision
(``labeling.preferences.weighted_decision``), on small planted data checkable by hand.

Planted: 60 comparisons, each judged by five consistent annotators (the truth, 10% of the time a
random choice instead), one who answers at random, and one who always picks the side shown on
the left (in the comparison's a/b frame: whichever response the screen put there).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from labeling import reliability
from labeling.preferences import Votes, decide, weighted_decision

CHOICES = ("a", "b", "tie", "both_bad")
CONSISTENT = [f"good{i}" for i in range(5)]
RANDOM, LEFT = "random", "always-left"


def planted_votes(comparisons: int = 60, seed: int = 0) -> list[tuple[int, str, str]]:
    """(comparison, annotator, choice) of the planted annotators."""
    rng = random.Random(seed)
    votes = []
    for comparison in range(comparisons):
        truth = rng.choices(CHOICES, weights=(45, 45, 5, 5))[0]
        for name in CONSISTENT:
            choice = rng.choice(CHOICES) if rng.random() < 0.1 else truth
            votes.append((comparison, name, choice))
        votes.append((comparison, RANDOM, rng.choice(CHOICES)))
        shown_left = rng.choice("ab")
        votes.append((comparison, LEFT, shown_left))
    return votes


# Dawid-Skene's score is chance-corrected: both planted annotators score near 0. MACE's competence
# is not: answering a or b at random on mostly a/b comparisons hits the truth half the time, and
# its prior on the spam distribution credits part of that to competence (0.2-0.45 here).
@pytest.mark.parametrize(("model", "planted_below"), [("dawid_skene", 0.2), ("mace", 0.5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_planted_annotators_get_the_lowest_reliability(
    model: str, planted_below: float, seed: int
) -> None:
    scores = reliability.scores(planted_votes(seed=seed), model)
    assert set(scores) == {*CONSISTENT, RANDOM, LEFT}
    lowest_two = sorted(scores, key=scores.__getitem__)[:2]
    assert set(lowest_two) == {RANDOM, LEFT}, scores
    assert all(0.0 <= value <= 1.0 for value in scores.values())
    assert max(scores[RANDOM], scores[LEFT]) < planted_below, scores
    assert min(scores[name] for name in CONSISTENT) > 0.6, scores


def test_both_models_together_for_the_stats_page() -> None:
    found = reliability.annotator_reliability(planted_votes())
    assert found[RANDOM].units == found["good0"].units == 60
    for model in reliability.MODELS:
        assert {name: getattr(found[name], model) for name in found} == reliability.scores(
            planted_votes(), model
        )


def test_scores_are_the_same_on_a_second_fit() -> None:
    votes = planted_votes(seed=3)
    for model in reliability.MODELS:
        assert reliability.scores(votes, model) == reliability.scores(votes, model)


def test_an_annotator_with_no_shared_comparison_gets_the_median_of_the_others() -> None:
    votes = [*planted_votes(), (1000, "loner", "a")]
    scores = reliability.scores(votes, "dawid_skene")
    weights = reliability.annotator_weights(votes, "dawid_skene")
    assert "loner" not in scores
    ordered = sorted(scores.values())
    assert weights["loner"] == round((ordered[3]), 4)  # median of 7 scores
    assert {k: v for k, v in weights.items() if k != "loner"} == scores


def test_no_evidence_weighs_everyone_alike() -> None:
    assert reliability.annotator_weights([(1, "x", "a"), (2, "y", "b")], "mace") == {
        "x": 1.0,
        "y": 1.0,
    }
    same = [(c, name, "a") for c in range(5) for name in ("x", "y")]
    assert reliability.scores(same, "dawid_skene") == {"x": 1.0, "y": 1.0}
    assert reliability.annotator_weights([], "mace") == {}


# --- the weighted decision ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "votes",
    [
        [("a", 4)],
        [("a", 2), ("a", 3), ("b", 1)],
        [("a", 2), ("b", 3)],
        [("tie", None), ("tie", None), ("a", 1)],
        [("both_bad", None), ("b", None), ("both_bad", None)],
        [("b", 4), ("b", None), ("a", 2), ("tie", None)],
    ],
)
def test_weights_of_one_decide_as_without_weights(votes: list[tuple[str, Any]]) -> None:
    plain = decide(Votes.of(votes))
    weighted, weight = weighted_decision((c, s, 1.0) for c, s in votes)
    assert weighted == plain
    assert weight == (plain.share if plain.outcome != "undecided" else 0.0)


def test_an_unreliable_dissent_barely_counts() -> None:
    # two reliable "a" (0.9) against one random "b" (0.1): a wins with share 1.8 / 1.9
    decision, weight = weighted_decision([("a", 4, 0.9), ("a", 2, 0.9), ("b", 4, 0.1)])
    assert decision.outcome == "a"
    assert decision.share == round(1.8 / 1.9, 4)
    assert decision.margin == round((1.0 + 1 / 3) / 2, 4)
    assert weight == round(1.8 / 1.9 * 0.9, 4)
    # unweighted, a reliable dissent weighs as much as the random one did: 2/3
    assert decide(Votes.of([("a", 4), ("a", 2), ("b", 4)])).share == 0.6667


def test_two_unreliable_votes_no_longer_outvote_a_reliable_one() -> None:
    votes = [("a", 3, 0.85), ("b", 2, 0.05), ("b", 1, 0.02)]
    assert decide(Votes.of((c, s) for c, s, _ in votes)).outcome == "b"
    decision, weight = weighted_decision(votes)
    assert decision.outcome == "a" and weight == round(0.85 / 0.92 * 0.85, 4)
    dropped, dropped_weight = weighted_decision(votes, drop_below=0.3)
    assert (dropped.outcome, dropped.n, dropped.share, dropped_weight) == ("a", 1, 1.0, 0.85)


def test_a_comparison_only_weak_annotators_decided_weighs_little_or_goes() -> None:
    decision, weight = weighted_decision([("b", 2, 0.1)])
    assert (decision.outcome, decision.share, weight) == ("b", 1.0, 0.1)
    nothing, _ = weighted_decision([("b", 2, 0.1)], drop_below=0.5)
    assert nothing.outcome == "undecided" and nothing.n == 0
    zero, zero_weight = weighted_decision([("a", 2, 0.0), ("b", 2, 0.0)])
    assert zero.outcome == "undecided" and zero_weight == 0.0


def test_a_split_goes_to_the_more_reliable_side_and_equal_sums_stay_undecided() -> None:
    decision, weight = weighted_decision([("a", 2, 0.8), ("b", 2, 0.7)])
    assert (decision.outcome, decision.share) == ("a", round(0.8 / 1.5, 4))
    assert weight == round(0.8 / 1.5 * 0.8, 4)
    even, even_weight = weighted_decision([("a", 2, 0.9), ("b", 2, 0.8), ("b", 2, 0.1)])
    assert even.outcome == "undecided" and even_weight == 0.0
