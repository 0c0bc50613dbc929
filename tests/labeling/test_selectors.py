"""Read queries: access scoping and the project figures on a fixture with known answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from labeling import selectors
from labeling.models import Assignment, Comparison, ComparisonStatus, Judgment, Project
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory


@dataclass
class StatsFixture:
    project: Project
    users: dict[str, Any]
    comparisons: dict[str, Comparison]


def build_stats_fixture() -> StatsFixture:
    """Five comparisons, three annotators, k=3; every figure below is worked out by hand.

    c1: u1 a (shown a: left), u2 a (shown b: right), u3 b (shown b: left)   complete
    c2: u1 tie, u2 tie                                                       open
    c3: u1 b (shown b: left), three days ago                                 open, u2 holds a lease
    c4: nothing                                                              closed
    c5: u1 a, u2 a, u3 a (all shown a: left)                                 complete
    """
    project = ProjectFactory.create(judgments_per_comparison=3)
    users = {name: UserFactory.create(username=name) for name in ("u1", "u2", "u3")}
    project.annotators.add(*users.values())
    comparisons = {
        name: ComparisonFactory.create(project=project) for name in ("c1", "c2", "c3", "c4", "c5")
    }
    rows = [
        ("c1", "u1", "a", "a", 1000),
        ("c1", "u2", "a", "b", 100),
        ("c1", "u3", "b", "b", None),
        ("c2", "u1", "tie", "a", 2000),
        ("c2", "u2", "tie", "b", 300),
        ("c3", "u1", "b", "b", 4000),
        ("c5", "u1", "a", "a", None),
        ("c5", "u2", "a", "a", None),
        ("c5", "u3", "a", "a", None),
    ]
    for comparison, user, choice, shown_left, time_spent_ms in rows:
        Judgment.objects.create(
            comparison=comparisons[comparison],
            annotator=users[user],
            choice=choice,
            strength=2 if choice in ("a", "b") else None,
            shown_left=shown_left,
            time_spent_ms=time_spent_ms,
        )
    Judgment.objects.filter(comparison=comparisons["c3"]).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    for name, count, status in [
        ("c1", 3, ComparisonStatus.COMPLETE),
        ("c2", 2, ComparisonStatus.OPEN),
        ("c3", 1, ComparisonStatus.OPEN),
        ("c4", 0, ComparisonStatus.CLOSED),
        ("c5", 3, ComparisonStatus.COMPLETE),
    ]:
        Comparison.objects.filter(pk=comparisons[name].pk).update(
            judgment_count=count, status=status
        )
    now = timezone.now()
    Assignment.objects.create(
        annotator=users["u2"],
        project=project,
        comparison=comparisons["c3"],
        leased_at=now,
        expires_at=now + timedelta(minutes=10),
        shown_left="a",
    )
    return StatsFixture(project, users, comparisons)


def test_project_stats_known_figures(db: Any, django_assert_max_num_queries: Any) -> None:
    fixture = build_stats_fixture()
    with django_assert_max_num_queries(5):
        stats = selectors.project_stats(project=fixture.project)
    assert stats.progress == selectors.Progress(
        comparisons_total=5,
        comparisons_open=2,
        comparisons_complete=2,
        comparisons_closed=1,
        live_leases=1,
        judgments_total=9,
        judgments_today=8,
    )
    assert stats.agreement == selectors.Agreement(
        comparisons_multiply_judged=3,
        judgment_pairs=7,  # c1: 3, c2: 1, c5: 3
        agreeing_pairs=5,  # c1: 1 (u1-u2), c2: 1, c5: 3
        pairwise_agreement=0.7143,
        side_choices=7,
        left_choices=6,
        position_bias_left=0.8571,
    )
    by_name = {f.username: f for f in stats.annotators}
    assert [f.username for f in stats.annotators] == ["u1", "u2", "u3"]
    u1, u2, u3 = by_name["u1"], by_name["u2"], by_name["u3"]
    assert (u1.judgments, u1.median_time_spent_ms, u1.tie_rate) == (4, 2000, 0.25)
    assert (u2.judgments, u2.median_time_spent_ms, u2.tie_rate) == (3, 200, 0.3333)
    assert (u3.judgments, u3.median_time_spent_ms, u3.tie_rate) == (2, None, 0.0)
    # On c1 the others of u1 and u2 split 1-1 (no majority); u3's others say a, u3 said b.
    assert (u1.agreement_with_majority, u1.majority_comparisons) == (1.0, 2)
    assert (u2.agreement_with_majority, u2.majority_comparisons) == (1.0, 2)
    assert (u3.agreement_with_majority, u3.majority_comparisons) == (0.5, 2)


def test_project_stats_empty_project(db: Any) -> None:
    stats = selectors.project_stats(project=ProjectFactory.create())
    assert stats.progress.comparisons_total == 0 and stats.progress.judgments_total == 0
    assert stats.agreement.pairwise_agreement is None
    assert stats.agreement.position_bias_left is None
    assert stats.annotators == []


def test_judgments_today_counts_from_local_midnight(db: Any) -> None:
    fixture = build_stats_fixture()
    tomorrow = timezone.now() + timedelta(days=1)
    assert (
        selectors.project_stats(project=fixture.project, now=tomorrow).progress.judgments_today == 0
    )


def test_scoping(project: Project, annotator: Any, admin_user: Any) -> None:
    other = ProjectFactory.create()
    foreign = ComparisonFactory.create(project=other)
    own = ComparisonFactory.create(project=project)
    assert list(selectors.projects_visible_to(user=annotator)) == [project]
    assert set(selectors.projects_visible_to(user=admin_user)) == {project, other}
    superuser = UserFactory.create(username="root")
    superuser.is_superuser = True
    assert set(selectors.projects_visible_to(user=superuser)) == {project, other}
    assert selectors.comparison_get_visible(user=annotator, comparison_id=own.pk) == own
    with pytest.raises(Comparison.DoesNotExist):
        selectors.comparison_get_visible(user=annotator, comparison_id=foreign.pk)
    with pytest.raises(Project.DoesNotExist):
        selectors.project_get_visible(user=annotator, project_id=other.pk)
    assert selectors.comparison_get_visible(user=admin_user, comparison_id=foreign.pk) == foreign
