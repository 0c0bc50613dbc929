"""Rankings (labeling.ranking): sets, the lease queue, expansion into C(K, 2) judgments, ties,
validation and atomicity, snapshots, agreement."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pytest

from labeling import selectors, services
from labeling.models import (
    AssignmentStatus,
    Comparison,
    ComparisonStatus,
    Judgment,
    Project,
    Ranking,
    RankingLease,
    RankingSet,
)
from labeling.preferences import snapshot_rows
from labeling.ranking import order_parse
from tests.factories import PromptFactory, ResponseFactory

pytestmark = pytest.mark.django_db


def _ranking_project(project: Project, *, k: int = 1) -> Project:
    services.project_depth_set(project=project, task_kind="ranking")
    Project.objects.filter(pk=project.pk).update(judgments_per_comparison=k)
    project.judgments_per_comparison = k
    return project


def _set(project: Project, size: int = 4) -> RankingSet:
    prompt = PromptFactory.create(project=project)
    for i in range(size):
        ResponseFactory.create(prompt=prompt, text=f"answer {prompt.pk}-{i}")
    [ranking_set] = services.ranking_sets_create(project=project, prompts=[prompt])
    return ranking_set


def _ids(ranking_set: RankingSet) -> list[int]:
    return list(ranking_set.responses.order_by("id").values_list("id", flat=True))


def _lease_and_rank(annotator: Any, project: Project, order: list[Any]) -> Any:
    lease = services.ranking_lease_next(annotator=annotator, project=project)
    assert lease is not None
    return services.ranking_submit(
        annotator=annotator, ranking_set=lease.ranking_set, order=order, time_spent_ms=900
    )


def test_sets_need_three_responses_and_keep_at_most_size(project: Project) -> None:
    _ranking_project(project)
    few = PromptFactory.create(project=project)
    ResponseFactory.create(prompt=few)
    ResponseFactory.create(prompt=few)
    many = PromptFactory.create(project=project)
    for i in range(12):
        ResponseFactory.create(prompt=many, text=f"r{i}")
    created = services.ranking_sets_create(project=project, size=5)
    assert [(s.prompt_id, s.size, s.responses.count()) for s in created] == [(many.pk, 5, 5)]
    assert services.ranking_sets_create(project=project, size=5) == []  # same set: not twice
    with pytest.raises(services.LabelingError) as error:
        services.ranking_sets_create(project=project, size=10)
    assert error.value.field == "size"


def test_ranking_expands_into_all_pairs_with_provenance(project: Project, annotator: Any) -> None:
    _ranking_project(project)
    ranking_set = _set(project, size=5)
    ids = _ids(ranking_set)
    best_first = [ids[2], ids[0], ids[4], ids[1], ids[3]]
    result = _lease_and_rank(annotator, project, best_first)

    assert result.created and result.pairs_kept == 0
    judgments = Judgment.objects.filter(ranking=result.ranking)
    assert judgments.count() == 10  # C(5, 2)
    rank = {response_id: i for i, response_id in enumerate(best_first)}
    for judgment in judgments.select_related("comparison"):
        a, b = judgment.comparison.response_a_id, judgment.comparison.response_b_id
        assert judgment.choice == ("a" if rank[a] < rank[b] else "b")
        assert judgment.strength is None and judgment.time_spent_ms is None
    pairs = {frozenset((j.comparison.response_a_id, j.comparison.response_b_id)) for j in judgments}
    assert pairs == {frozenset(p) for p in combinations(ids, 2)}
    ranking_set.refresh_from_db()
    assert (ranking_set.ranking_count, ranking_set.status) == (1, ComparisonStatus.COMPLETE)
    assert RankingLease.objects.get(annotator=annotator).status == AssignmentStatus.DONE
    assert result.ranking.time_spent_ms == 900
    # k = 1: every derived comparison is complete, so the pairwise queue does not serve them.
    assert set(
        Comparison.objects.filter(pk__in=judgments.values("comparison")).values_list(
            "status", flat=True
        )
    ) == {ComparisonStatus.COMPLETE}


def test_ties_become_tie_judgments(project: Project, annotator: Any) -> None:
    _ranking_project(project)
    ranking_set = _set(project, size=4)
    w, x, y, z = _ids(ranking_set)
    result = _lease_and_rank(annotator, project, [[y], [w, z], [x]])
    choices = {
        frozenset((j.comparison.response_a_id, j.comparison.response_b_id)): j.choice
        for j in Judgment.objects.filter(ranking=result.ranking).select_related("comparison")
    }
    assert choices[frozenset((w, z))] == "tie"
    assert sum(1 for c in choices.values() if c == "tie") == 1
    assert len(choices) == 6
    assert result.ranking.order == [[y], [w, z], [x]]


@pytest.mark.parametrize(
    "make_order, message",
    [
        (lambda ids: ids[:-1], "leaves out"),
        (lambda ids: [*ids, ids[0]], "more than once"),
        (lambda ids: [*ids[:-1], 999999], "not in this ranking set"),
        (lambda ids: [ids], "one tie"),
    ],
)
def test_bad_orders_are_refused_and_write_nothing(
    project: Project, annotator: Any, make_order: Any, message: str
) -> None:
    _ranking_project(project)
    ranking_set = _set(project, size=4)
    lease = services.ranking_lease_next(annotator=annotator, project=project)
    assert lease is not None
    with pytest.raises(services.LabelingError) as error:
        services.ranking_submit(
            annotator=annotator, ranking_set=ranking_set, order=make_order(_ids(ranking_set))
        )
    assert error.value.status == 400 and error.value.field == "order"
    assert message in error.value.message
    assert not Ranking.objects.exists() and not Judgment.objects.exists()
    assert Comparison.objects.count() == 0
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.ACTIVE


def test_order_parse_shapes() -> None:
    assert order_parse("3,1=4,2") == [[3], [1, 4], [2]]
    assert order_parse([3, [1, 4], 2]) == [[3], [1, 4], [2]]
    for bad in ("3,x", [], [True, 2], [[], 1], {"a": 1}):
        with pytest.raises(services.LabelingError):
            order_parse(bad)


def test_retry_returns_stored_ranking(project: Project, annotator: Any) -> None:
    _ranking_project(project)
    ranking_set = _set(project)
    ids = _ids(ranking_set)
    first = _lease_and_rank(annotator, project, ids)
    again = services.ranking_submit(annotator=annotator, ranking_set=ranking_set, order=ids)
    assert not again.created and again.ranking.pk == first.ranking.pk
    assert Judgment.objects.count() == 6


def test_submit_needs_a_lease_and_a_ranking_project(project: Project, annotator: Any) -> None:
    _ranking_project(project)
    ranking_set = _set(project)
    with pytest.raises(services.Conflict):
        services.ranking_submit(
            annotator=annotator, ranking_set=ranking_set, order=_ids(ranking_set)
        )
    services.project_depth_set(project=project, task_kind="pairwise")
    with pytest.raises(services.Conflict):
        services.ranking_lease_next(annotator=annotator, project=project)


def test_queue_serves_k_annotators_then_stops(
    project: Project, annotator: Any, other_annotator: Any, admin_user: Any
) -> None:
    _ranking_project(project, k=2)
    ranking_set = _set(project)
    first = services.ranking_lease_next(annotator=annotator, project=project)
    second = services.ranking_lease_next(annotator=other_annotator, project=project)
    assert first is not None and second is not None
    assert first.ranking_set_id == second.ranking_set_id == ranking_set.pk
    # the same lease again while live; the third annotator finds no free slot
    assert services.ranking_lease_next(annotator=annotator, project=project) == first
    assert services.ranking_lease_next(annotator=admin_user, project=project) is None
    assert sorted(first.display_order) == _ids(ranking_set)


def test_skip_frees_the_slot(project: Project, annotator: Any, other_annotator: Any) -> None:
    _ranking_project(project)
    _set(project)
    lease = services.ranking_lease_next(annotator=annotator, project=project)
    assert lease is not None
    assert services.ranking_lease_next(annotator=other_annotator, project=project) is None
    services.ranking_skip(annotator=annotator, lease=lease)
    assert services.ranking_lease_next(annotator=annotator, project=project) is None
    assert services.ranking_lease_next(annotator=other_annotator, project=project) is not None


def test_derived_pairs_feed_snapshots_like_judgments(project: Project, annotator: Any) -> None:
    _ranking_project(project)
    ranking_set = _set(project, size=3)
    ids = _ids(ranking_set)
    texts = dict(ranking_set.responses.values_list("id", "text"))
    result = _lease_and_rank(annotator, project, [ids[1], [ids[0], ids[2]]])
    rows = snapshot_rows([j.pk for j in result.judgments])
    pairs = {(row["chosen"], row["rejected"]) for row in rows}
    assert pairs == {(texts[ids[1]], texts[ids[0]]), (texts[ids[1]], texts[ids[2]])}
    assert all(row["margin"] == 0.0 and row["weight"] == 1.0 for row in rows)
    assert len(snapshot_rows([j.pk for j in result.judgments], ties="split")) == 4


def test_agreement_counts_each_annotator_once_per_pair(
    project: Project, annotator: Any, other_annotator: Any
) -> None:
    _ranking_project(project, k=2)
    ranking_set = _set(project, size=4)
    ids = _ids(ranking_set)
    _lease_and_rank(annotator, project, ids)
    alone = selectors.project_stats(project=project, with_quality=False).agreement
    assert alone.comparisons_multiply_judged == 0 and alone.judgment_pairs == 0
    # the second annotator swaps the last two: 5 of the 6 pairs agree
    _lease_and_rank(other_annotator, project, [*ids[:2], ids[3], ids[2]])
    both = selectors.project_stats(project=project, with_quality=False).agreement
    assert (both.comparisons_multiply_judged, both.judgment_pairs, both.agreeing_pairs) == (6, 6, 5)


def test_overlapping_set_keeps_the_earlier_vote(project: Project, annotator: Any) -> None:
    _ranking_project(project)
    first = _set(project, size=3)
    ids = _ids(first)
    _lease_and_rank(annotator, project, ids)
    extra = ResponseFactory.create(prompt=first.prompt, text="a fourth answer")
    [second] = services.ranking_sets_create(project=project, prompts=[first.prompt])
    assert second.size == 4
    result = _lease_and_rank(annotator, project, [extra.pk, *reversed(ids)])
    assert result.pairs_kept == 3 and len(result.judgments) == 3
    assert Judgment.objects.filter(annotator=annotator).count() == 6


def test_undo_leaves_ranking_judgments_alone(project: Project, annotator: Any) -> None:
    _ranking_project(project)
    ranking_set = _set(project)
    _lease_and_rank(annotator, project, _ids(ranking_set))
    with pytest.raises(services.LabelingError):
        services.judgment_undo(annotator=annotator, project=project)
    assert Judgment.objects.count() == 6


def test_undo_takes_the_ranking_and_its_judgments_back(project: Project, annotator: Any) -> None:
    _ranking_project(project)
    ranking_set = _set(project)
    ids = _ids(ranking_set)
    first = _lease_and_rank(annotator, project, ids)
    shown = first.ranking.display_order
    lease = services.ranking_undo(annotator=annotator, project=project)
    assert lease.ranking_set_id == ranking_set.pk and lease.display_order == shown
    assert not Ranking.objects.exists() and not Judgment.objects.exists()
    ranking_set.refresh_from_db()
    assert (ranking_set.ranking_count, ranking_set.status) == (0, ComparisonStatus.OPEN)
    assert set(Comparison.objects.values_list("judgment_count", "status")) == {
        (0, ComparisonStatus.OPEN)
    }
    again = services.ranking_submit(
        annotator=annotator, ranking_set=ranking_set, order=list(reversed(ids))
    )
    assert again.created and len(again.judgments) == 6
    with pytest.raises(services.LabelingError):
        services.ranking_undo(annotator=annotator, project=Project.objects.create(name="empty"))
