"""Label-quality figures: agreement against hand-computed cases, the bias audit against planted
annotators, and the figures in project_stats / the stats API / the project page."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from labeling import quality, selectors
from labeling.models import Comparison, Judgment, Project
from labeling.preferences import rounds_q
from labeling.quality import Figure, Row
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory
from tests.labeling import planted


def units(*votes: tuple[tuple[int, str, int | None], ...], batch: str = "") -> list[Row]:
    """Rows from units of ``(annotator, choice, strength)`` votes, one comparison per unit."""
    return [
        Row(
            annotator_id=annotator, comparison_id=cid, choice=choice, strength=strength, batch=batch
        )
        for cid, unit in enumerate(votes, start=1)
        for annotator, choice, strength in unit
    ]


# --- agreement, by hand --------------------------------------------------------------------------


def test_nominal_alpha_exactly_known() -> None:
    """Units (a, a), (b, b), (a, b): n = 6 pairable values, n_a = n_b = 3.
    Coincidences: o_aa = 2, o_bb = 2, o_ab = o_ba = 1.
    alpha = 1 - (n - 1) * (o_ab + o_ba) / (n_a n_b + n_b n_a) = 1 - 5 * 2 / 18 = 4/9.
    Percent agreement: pairs agreeing 1 + 1 + 0 of 3 = 2/3.
    Fleiss: P_i = 1, 1, 0 → P = 2/3; p_a = p_b = 1/2 → P_e = 1/2; kappa = (2/3 - 1/2) / (1/2) = 1/3.
    """
    rows = units(((1, "a", 2), (2, "a", 2)), ((1, "b", 2), (2, "b", 2)), ((1, "a", 2), (2, "b", 2)))
    figures = quality.agreement(list(quality._units(rows).values()))
    assert figures.comparisons == 3 and figures.judgments == 6
    assert figures.alpha_nominal == Figure(round(4 / 9, 4))
    assert figures.percent_agreement == Figure(round(2 / 3, 4))
    assert figures.fleiss_kappa == Figure(round(1 / 3, 4))
    # signed strengths +2, +2 | -2, -2 | +2, -2: two values, so ordinal = nominal here
    assert figures.alpha_ordinal == Figure(round(4 / 9, 4))


def test_ordinal_alpha_on_signed_strength_and_both_bad_left_out() -> None:
    """Units (a1, a2) → (+1, +2) and (b1, b1) → (-1, -1); a (both_bad, both_bad) unit is left out.
    n = 4; n_-1 = 2, n_+1 = 1, n_+2 = 1. Ordinal distance d(c, k) = (sum_{g=c..k} n_g - (n_c + n_k)/2)^2:
    d(+1, +2) = (2 - 1)^2 = 1; d(-1, +1) = (3 - 1.5)^2 = 2.25; d(-1, +2) = (4 - 1.5)^2 = 6.25.
    D_o = (1/n) * (o_{+1,+2} + o_{+2,+1}) * 1 = 2/4 = 0.5.
    D_e = 2 * (1*1*1 + 2*1*2.25 + 2*1*6.25) / (n (n - 1)) = 36/12 = 3.  alpha = 1 - 0.5/3 = 5/6.
    Nominal: (a, a), (b, b), (both_bad, both_bad): perfect, 1.0.
    """
    rows = units(
        ((1, "a", 1), (2, "a", 2)),
        ((1, "b", 1), (2, "b", 1)),
        ((1, "both_bad", None), (2, "both_bad", None)),
    )
    figures = quality.agreement(list(quality._units(rows).values()))
    assert figures.alpha_ordinal == Figure(round(5 / 6, 4))
    assert figures.alpha_nominal == Figure(1.0)


def test_fleiss_kappa_constant_and_varying_raters() -> None:
    """Three raters: (a, a, a), (a, a, b), (b, b, tie).
    P_i = 6/6, 2/6, 2/6 → P = 5/9; totals a 5, b 3, tie 1 of 9 → P_e = 35/81;
    kappa = (45/81 - 35/81) / (46/81) = 10/46.
    Varying raters (the generalisation): (a, a), (a, b, b): P_i = 1, 2/6 → P = 2/3;
    totals a 3, b 2 of 5 → P_e = 13/25; kappa = (2/3 - 13/25) / (12/25) = 11/36.
    """
    constant = units(
        ((1, "a", 1), (2, "a", 1), (3, "a", 1)),
        ((1, "a", 1), (2, "a", 1), (3, "b", 1)),
        ((1, "b", 1), (2, "b", 1), (3, "tie", None)),
    )
    assert quality.agreement(list(quality._units(constant).values())).fleiss_kappa == Figure(
        round(10 / 46, 4)
    )
    varying = units(((1, "a", 1), (2, "a", 1)), ((1, "a", 1), (2, "b", 1), (3, "b", 1)))
    assert quality.agreement(list(quality._units(varying).values())).fleiss_kappa == Figure(
        round(11 / 36, 4)
    )


def test_cohen_kappa_of_pairs_with_enough_shared_items() -> None:
    """Annotator 1: a x5, b x5; annotator 2 agrees except on the fifth a (says b).
    p_o = 9/10; marginals 1: a .5 b .5, 2: a .4 b .6 → p_e = .5*.4 + .5*.6 = .5;
    kappa = (.9 - .5) / .5 = 0.8. Annotator 3 shares 2 comparisons with each: no pair listed."""
    first = ["a"] * 5 + ["b"] * 5
    second = ["a"] * 4 + ["b"] * 6
    votes = [((1, x, 2), (2, y, 2)) for x, y in zip(first, second, strict=True)]
    votes += [((1, "a", 2), (3, "a", 2)), ((2, "b", 2), (3, "b", 2))]
    pairs = quality.pair_kappas(quality._units(units(*votes)).values(), {1: "u1", 2: "u2"})
    assert [(p.annotator_ids, p.usernames, p.shared) for p in pairs] == [((1, 2), ("u1", "u2"), 10)]
    assert pairs[0].cohen_kappa == Figure(0.8)
    too_few = quality.cohen_kappa(first[:9], second[:9])
    assert too_few.value is None and "fewer than 10" in too_few.reason


def test_undefined_figures_are_none_with_a_reason() -> None:
    nothing = quality.agreement([])
    for figure in (
        nothing.percent_agreement,
        nothing.alpha_nominal,
        nothing.alpha_ordinal,
        nothing.fleiss_kappa,
    ):
        assert figure.value is None and "two judgments" in figure.reason
    same = quality.agreement(
        list(quality._units(units(((1, "tie", None), (2, "tie", None)))).values())
    )
    assert same.percent_agreement == Figure(1.0)
    for figure in (same.alpha_nominal, same.alpha_ordinal, same.fleiss_kappa):
        assert figure.value is None and "no variation" in figure.reason
    assert quality.cohen_kappa(["a"] * 10, ["a"] * 10).reason.startswith("no variation")


def test_annotator_agreement_counts_only_their_pairs_with_the_others() -> None:
    """(1 a, 2 a, 3 b) and (1 b, 2 b): annotator 3's pairs: (3b, 1a), (3b, 2a) → 0/2;
    annotator 1's: (1a, 2a) yes, (1a, 3b) no, (1b, 2b) yes → 2/3."""
    rows = units(((1, "a", 2), (2, "a", 2), (3, "b", 2)), ((1, "b", 2), (2, "b", 2)))
    by_id = {a.annotator_id: a for a in quality.quality(rows).annotators}
    assert by_id[3].agreement.percent_agreement == Figure(0.0)
    assert by_id[3].agreement.comparisons == 1
    assert by_id[1].agreement.percent_agreement == Figure(round(2 / 3, 4))
    assert by_id[1].agreement.comparisons == 2


def test_rounds_are_separated() -> None:
    rows = [
        *units(((1, "a", 2), (2, "a", 2)), batch="round-2:dpo"),
        *[
            Row(r.annotator_id, r.comparison_id + 10, r.choice, r.strength, batch="demo")
            for r in units(((1, "a", 2), (2, "b", 2)))
        ],
    ]
    rounds = quality.quality(rows).rounds
    assert [(r.round, r.agreement.percent_agreement.value) for r in rounds] == [(0, 0.0), (2, 1.0)]


def test_round_of_matches_rounds_q(db: Any) -> None:
    project = ProjectFactory.create()
    batches = ["", "demo", "round-1", "round-1:dpo", "round-12", "round-12:x", "round-0", "round-x"]
    for batch in batches:
        ComparisonFactory.create(project=project, batch=batch)
    for number in (0, 1, 12):
        expected = set(
            Comparison.objects.filter(rounds_q([number]), project=project).values_list(
                "batch", flat=True
            )
        )
        assert {b for b in batches if quality.round_of(b) == number} == expected


def test_binomial_interval() -> None:
    """Binomial(20, 0.5): P(X <= 5) = 0.0207 <= 0.025 < P(X <= 6) = 0.0577 → [6, 14]."""
    assert quality.binomial_interval(20, 0.5) == (6, 14)
    assert quality.binomial_interval(0, 0.5) == (0, 0)
    assert quality.binomial_interval(10, 0.0) == (0, 0)


# --- bias audit ----------------------------------------------------------------------------------


def simulated_rows(seed: int = 7, comparisons: int = 80) -> list[Row]:
    """Three honest annotators (1-3: the hidden better side with p = 0.85, a tie one time in ten),
    an always-left one (4) and an always-longer one (5); sides shown, lengths and the better side
    are drawn independently."""
    rng = random.Random(seed)
    rows = []
    for cid in range(1, comparisons + 1):
        better = rng.choice("ab")
        length_a, length_b = rng.sample(range(50, 500), 2)
        for annotator in range(1, 6):
            shown_left = rng.choice("ab")
            if annotator == 4:
                choice = shown_left
            elif annotator == 5:
                choice = "a" if length_a > length_b else "b"
            elif rng.random() < 0.1:
                choice = "tie"
            else:
                choice = better if rng.random() < 0.85 else ("b" if better == "a" else "a")
            rows.append(
                Row(
                    annotator_id=annotator,
                    comparison_id=cid,
                    choice=choice,
                    strength=rng.randint(1, 4) if choice in "ab" else None,
                    shown_left=shown_left,
                    time_spent_ms=rng.randint(3000, 20000),
                    length_a=length_a,
                    length_b=length_b,
                )
            )
    return rows


@pytest.mark.parametrize("seed", [1, 2, 7, 11])
def test_planted_biased_annotators_are_flagged_and_honest_ones_not(seed: int) -> None:
    result = quality.quality(simulated_rows(seed))
    flags = {a.annotator_id: {f.code for f in a.flags} for a in result.annotators}
    assert flags[1] == flags[2] == flags[3] == set()
    assert "left_side" in flags[4] and "longer" not in flags[4]
    assert "longer" in flags[5] and "left_side" not in flags[5]
    always_left = next(a for a in result.annotators if a.annotator_id == 4)
    assert always_left.bias.left_rate == 1.0
    message = next(f.message for f in always_left.flags if f.code == "left_side")
    assert "left" in message and "100%" in message and "80" in message


def test_flag_rates_over_many_simulations() -> None:
    """The tests are at the 95% level, so an honest annotator is flagged now and then (seeds 3
    and 6 above): over 20 simulations the planted ones are always flagged, honest ones rarely."""
    honest_flagged = 0
    for seed in range(1, 21):
        flags = {
            a.annotator_id: {f.code for f in a.flags}
            for a in quality.quality(simulated_rows(seed)).annotators
        }
        assert "left_side" in flags[4] and "longer" in flags[5]
        honest_flagged += sum(bool(flags[i]) for i in (1, 2, 3))
    assert honest_flagged <= 6  # of 60 honest annotator runs (10%; the 95% level expects ~3)


def test_honest_annotators_alone_raise_no_flags() -> None:
    honest = [row for row in simulated_rows(seed=11) if row.annotator_id <= 3]
    result = quality.quality(honest)
    assert result.flags == []
    assert all(a.flags == [] for a in result.annotators)


def test_bias_rates_by_hand() -> None:
    """Sided: a shown left (left, longer: a 10 > b 5), b shown left (left, shorter), b shown right
    (right, shorter); a tie and a both_bad. left 2/3, longer 1/3, tie 1/5, both-bad 1/5,
    median time of 1, 2, 3, 4, 5 s = 3 s."""
    rows = [
        Row(1, cid, choice, None, shown_left, time_spent_ms=ms, length_a=10, length_b=5)
        for cid, choice, shown_left, ms in [
            (1, "a", "a", 1000),
            (2, "b", "b", 2000),
            (3, "b", "a", 3000),
            (4, "tie", "a", 4000),
            (5, "both_bad", "a", 5000),
        ]
    ]
    figures = quality.bias(rows)
    assert (figures.left_rate, figures.longer_rate) == (0.6667, 0.3333)
    assert (figures.tie_rate, figures.both_bad_rate, figures.median_time_ms) == (0.2, 0.2, 3000.0)


# --- in the project figures, the API and the page ------------------------------------------------


def judged_project(annotators: int, seed: int = 7) -> Project:
    """A project whose judgments are ``simulated_rows`` (annotator 4 always left, 5 always longer),
    with ``annotators`` annotators (the first ones of the simulation, then more honest ones)."""
    rng = random.Random(seed)
    project = ProjectFactory.create(judgments_per_comparison=annotators)
    users = [UserFactory.create(username=f"ann{i}") for i in range(1, annotators + 1)]
    project.annotators.add(*users)
    comparisons = {}
    for row in simulated_rows(seed, comparisons=30):
        if row.comparison_id not in comparisons:
            comparison = ComparisonFactory.create(project=project, batch="round-1")
            comparison.response_a.text = "x" * row.length_a
            comparison.response_a.save()
            comparison.response_b.text = "y" * row.length_b
            comparison.response_b.save()
            comparisons[row.comparison_id] = comparison
    for row in simulated_rows(seed, comparisons=30):
        if row.annotator_id > annotators:
            continue
        Judgment.objects.create(
            annotator=users[row.annotator_id - 1],
            comparison=comparisons[row.comparison_id],
            choice=row.choice,
            strength=row.strength,
            shown_left=row.shown_left,
            time_spent_ms=row.time_spent_ms,
        )
    for user in users[5:]:
        for comparison in comparisons.values():
            Judgment.objects.create(
                annotator=user,
                comparison=comparison,
                choice=rng.choice("ab"),
                strength=2,
                shown_left=rng.choice("ab"),
            )
    return project


@pytest.mark.parametrize("annotators", [5, 9])
def test_project_stats_quality_in_five_queries(
    db: Any, annotators: int, django_assert_max_num_queries: Any
) -> None:
    project = judged_project(annotators)
    with django_assert_max_num_queries(5):
        stats = selectors.project_stats(project=project)
    assert stats.quality is not None
    assert len(stats.quality.annotators) == annotators
    assert [r.round for r in stats.quality.rounds] == [1]
    by_name = {a.username: a for a in stats.quality.annotators}
    assert "left_side" in {f.code for f in by_name["ann4"].flags}
    assert by_name["ann5"].bias.longer_rate == 1.0
    assert stats.quality.agreement.comparisons == 30


def test_the_reliability_fit_is_cached_until_a_vote_changes(
    db: Any, admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = judged_project(5)
    fits: list[int] = []
    real_fit = selectors.annotator_reliability

    def counting_fit(votes: Any) -> Any:
        fits.append(len(votes))
        return real_fit(votes)

    monkeypatch.setattr(selectors, "annotator_reliability", counting_fit)
    cache.clear()
    first = selectors.project_stats(project=project).quality
    second = selectors.project_stats(project=project).quality
    assert len(fits) == 1
    assert first is not None and second is not None
    assert [a.reliability for a in first.annotators] == [a.reliability for a in second.annotators]
    judgment = Judgment.objects.filter(comparison__project=project).order_by("pk").first()
    assert judgment is not None
    judgment.choice = "b" if judgment.choice == "a" else "a"
    judgment.save(update_fields=["choice"])
    third = selectors.project_stats(project=project).quality
    assert len(fits) == 2
    assert third is not None
    selectors.project_stats(project=project)
    assert len(fits) == 2


def test_stats_api_reports_quality_as_json_without_nan(db: Any, admin_user: Any) -> None:
    project = judged_project(5)
    lone = ComparisonFactory.create(project=project)  # judged once: no unit
    Judgment.objects.create(
        annotator=admin_user, comparison=lone, choice="tie", shown_left="a", time_spent_ms=10
    )
    client = APIClient()
    client.force_authenticate(admin_user)
    response = client.get(f"/api/v1/projects/{project.pk}/stats/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "NaN" not in text and "Infinity" not in text
    body = json.loads(text)["quality"]
    assert set(body["agreement"]) == {
        "comparisons",
        "judgments",
        "percent_agreement",
        "alpha_nominal",
        "alpha_ordinal",
        "fleiss_kappa",
    }
    assert body["agreement"]["alpha_nominal"]["reason"] == ""
    assert isinstance(body["agreement"]["alpha_nominal"]["value"], float)
    assert [r["round"] for r in body["rounds"]] == [1]
    admin_row = next(a for a in body["annotators"] if a["annotator_id"] == admin_user.pk)
    assert admin_row["agreement"]["alpha_nominal"] == {
        "value": None,
        "reason": "no comparison has two judgments to compare",
    }
    ann4 = next(a for a in body["annotators"] if a["username"] == "ann4")
    assert [f["code"] for f in ann4["flags"]][:1] == ["left_side"]


def test_stats_api_quality_of_an_empty_project(db: Any, admin_user: Any) -> None:
    client = APIClient()
    client.force_authenticate(admin_user)
    body = client.get(f"/api/v1/projects/{ProjectFactory.create().pk}/stats/").json()
    assert body["quality"]["agreement"]["fleiss_kappa"]["value"] is None
    assert body["quality"]["annotators"] == [] and body["quality"]["flags"] == []


def test_project_page_shows_quality_and_flags_but_its_refresh_does_not(
    db: Any, admin_user: Any
) -> None:
    project = judged_project(5)
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("project_detail", args=[project.pk])).content.decode()
    assert "Label quality" in page
    assert "Chose the side shown on the left in 100%" in page
    assert page.count('data-testid="quality-annotator"') == 5
    fragment = client.get(
        reverse("project_detail", args=[project.pk]), headers={"HX-Request": "true"}
    )
    assert b"Label quality" not in fragment.content


def test_stats_api_and_page_show_reliability_and_flag_the_planted_annotators(
    db: Any, admin_user: Any
) -> None:
    project = planted.planted_project()
    client = APIClient()
    client.force_authenticate(admin_user)
    body = client.get(f"/api/v1/projects/{project.pk}/stats/").json()["quality"]
    rows = {a["username"]: a for a in body["annotators"]}
    assert set(rows) == {*planted.CONSISTENT, *planted.PLANTED}
    for model in ("dawid_skene", "mace"):
        scores = {name: row["reliability"][model] for name, row in rows.items()}
        assert set(sorted(scores, key=scores.__getitem__)[:2]) == set(planted.PLANTED), scores
    assert rows["good0"]["reliability"]["units"] == planted.MAIN_COMPARISONS + 1  # + outvoted
    assert rows[planted.RANDOM]["reliability"]["units"] == planted.MAIN_COMPARISONS + 1
    unreliable = {
        name for name, row in rows.items() if "unreliable" in {f["code"] for f in row["flags"]}
    }
    assert unreliable == set(planted.PLANTED)
    page = Client()
    page.force_login(admin_user)
    html = page.get(reverse("project_detail", args=[project.pk])).content.decode()
    assert html.count('data-testid="reliability-ds"') == 7
    assert f"{rows['good0']['reliability']['dawid_skene']:.2f}" in html
    assert "Unreliable: Dawid-Skene" in html


def test_an_annotator_without_a_shared_comparison_has_no_reliability(db: Any) -> None:
    rows = [Row(1, 1, "a"), Row(2, 1, "b"), Row(1, 2, "a"), Row(2, 2, "a"), Row(3, 3, "tie")]
    found = {a.annotator_id: a.reliability for a in quality.quality(rows).annotators}
    assert found[3] == quality.NO_RELIABILITY and found[3].dawid_skene is None
    assert found[1].units == 2 and found[1].dawid_skene is not None
