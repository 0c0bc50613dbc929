"""``Comparison.judgment_count`` has one writer (labeling.queue): after any mix of submits, undos
and preference imports, every stored count equals the judgments stored, and the status follows
(complete at k, open below, closed stays closed)."""

from __future__ import annotations

from typing import Any

import pytest

from labeling import services
from labeling.interchange.preference_imports import preferences_import
from labeling.models import Comparison, ComparisonStatus, Judgment, Project
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def _raw_row(comparison: Comparison, annotator: str, choice: str) -> dict[str, Any]:
    """A raw-format judgment on an existing comparison, its responses given in swapped order."""
    return {
        "prompt_id": comparison.prompt.external_id,
        "prompt": comparison.prompt.messages,
        "response_a": comparison.response_b.text,
        "response_b": comparison.response_a.text,
        "annotator": annotator,
        "choice": choice,
        "strength": 2 if choice in ("a", "b") else None,
    }


def _assert_counts_true(project: Project) -> None:
    k = project.judgments_per_comparison
    for comparison in Comparison.objects.filter(project=project):
        stored = Judgment.objects.filter(comparison=comparison).count()
        assert comparison.judgment_count == stored, comparison
        if comparison.status != ComparisonStatus.CLOSED:
            expected = ComparisonStatus.COMPLETE if stored >= k else ComparisonStatus.OPEN
            assert comparison.status == expected, (comparison, stored)


def _judge(annotator: Any, project: Project) -> Comparison:
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    services.judgment_submit(annotator=annotator, comparison=lease.comparison, choice="tie")
    return lease.comparison


def test_counts_after_submits_undos_and_an_import() -> None:
    project = ProjectFactory.create(judgments_per_comparison=2)
    first, second, third = (ComparisonFactory.create(project=project) for _ in range(3))
    ann1, ann2, ann3 = (UserFactory.create(username=f"count-{i}") for i in range(3))

    assert _judge(ann1, project) == first
    assert _judge(ann2, project) == first  # k = 2: first is complete
    assert _judge(ann1, project) == second
    _assert_counts_true(project)
    assert Comparison.objects.get(pk=first.pk).status == ComparisonStatus.COMPLETE

    services.judgment_undo(annotator=ann2, project=project)  # first drops back to open
    _assert_counts_true(project)
    assert Comparison.objects.get(pk=first.pk).judgment_count == 1

    # An imported dataset judges first (completing it again) and third, and repeats a judgment
    # ann1 already gave on second (a duplicate: not counted twice).
    result = preferences_import(
        project=project,
        rows=enumerate(
            [
                _raw_row(first, "imported-1", "a"),
                _raw_row(third, "imported-1", "b"),
                _raw_row(third, "imported-2", "tie"),
                _raw_row(second, ann1.username, "tie"),
            ],
            start=1,
        ),
        dataset_format="raw",
    )
    assert result.judgments_created == 3 and result.duplicates == 1
    assert result.comparisons_created == 0
    _assert_counts_true(project)
    statuses = dict(Comparison.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: ComparisonStatus.COMPLETE,
        second.pk: ComparisonStatus.OPEN,
        third.pk: ComparisonStatus.COMPLETE,
    }

    # first and third are complete: the queue offers ann2 only second.
    assert _judge(ann2, project) == second
    _assert_counts_true(project)
    services.judgment_undo(annotator=ann2, project=project)
    services.judgment_undo(annotator=ann1, project=project)  # ann1's last: second
    _assert_counts_true(project)
    assert Comparison.objects.get(pk=second.pk).judgment_count == 0
    for annotator in (ann1, ann2):  # the undos leased second to them again: give it back
        services.assignment_release_all(annotator=annotator, project=project)
    assert _judge(ann3, project) == second
    _assert_counts_true(project)

    # A closed comparison keeps its status when an import adds to it.
    services.comparisons_close(comparison_ids=[first.pk])
    preferences_import(
        project=project,
        rows=enumerate([_raw_row(first, "imported-2", "a")], start=1),
        dataset_format="raw",
    )
    closed = Comparison.objects.get(pk=first.pk)
    assert closed.status == ComparisonStatus.CLOSED and closed.judgment_count == 3
    _assert_counts_true(project)
