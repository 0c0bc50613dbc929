"""Onboarding (labeling.onboarding): the gate's cost, admins, the qualification set, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from labeling import onboarding, services
from labeling.models import Onboarding, Project, QualificationAnswer
from tests.factories import ComparisonFactory

pytestmark = pytest.mark.django_db


def _require(project: Project, items: int = 2, mark: float = 0.5) -> None:
    services.project_depth_set(
        project=project,
        onboarding_required=True,
        qualification_items=items,
        qualification_pass_mark=mark,
    )


def test_the_check_reads_nothing_when_onboarding_is_off(
    project: Project, annotator: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        services.onboarding_check(annotator=annotator, project=project)


def test_once_onboarded_the_check_reads_one_row(
    project: Project, annotator: Any, django_assert_num_queries: Any
) -> None:
    _require(project, items=1, mark=1.0)
    gold = ComparisonFactory.create(project=project, gold_answer="a")
    services.guidelines_acknowledge(annotator=annotator, project=project)
    result = services.qualification_answer(
        annotator=annotator, project=project, comparison_id=gold.pk, choice="a"
    )
    assert result.finished and result.passed and result.score == 1.0
    annotator = type(annotator).objects.get(pk=annotator.pk)
    annotator._pairwise_is_admin = False  # as the request has it cached
    with django_assert_num_queries(1):
        services.onboarding_check(annotator=annotator, project=project)


def test_admins_are_exempt(project: Project, admin_user: Any) -> None:
    _require(project)
    services.onboarding_check(annotator=admin_user, project=project)
    assert onboarding.onboarding_status(annotator=admin_user, project=project).ready


def test_without_gold_items_the_annotator_is_told_to_ask_an_admin(
    project: Project, annotator: Any
) -> None:
    _require(project)
    services.guidelines_acknowledge(annotator=annotator, project=project)
    with pytest.raises(services.NotOnboarded) as refused:
        services.onboarding_check(annotator=annotator, project=project)
    assert refused.value.status == 403 and "no qualification items" in refused.value.message


def test_the_set_is_the_first_gold_items_and_fewer_when_fewer_exist(
    project: Project, annotator: Any
) -> None:
    _require(project, items=3)
    ComparisonFactory.create(project=project)
    first = ComparisonFactory.create(project=project, gold_answer="b")
    second = ComparisonFactory.create(project=project, gold_answer="a")
    assert [c.pk for c in onboarding.qualification_set(project)] == [first.pk, second.pk]
    services.guidelines_acknowledge(annotator=annotator, project=project)
    status = onboarding.onboarding_status(annotator=annotator, project=project)
    assert status.qualification_items == 2 and status.next_item == first


def test_refusals_write_nothing(project: Project, annotator: Any) -> None:
    _require(project, items=2)
    gold = ComparisonFactory.create(project=project, gold_answer="a")
    ComparisonFactory.create(project=project, gold_answer="b")
    normal = ComparisonFactory.create(project=project)
    services.guidelines_acknowledge(annotator=annotator, project=project)
    for comparison_id, choice, status in ((normal.pk, "a", 400), (gold.pk, "maybe", 400)):
        with pytest.raises(services.LabelingError) as refused:
            services.qualification_answer(
                annotator=annotator, project=project, comparison_id=comparison_id, choice=choice
            )
        assert refused.value.status == status
    services.qualification_answer(
        annotator=annotator, project=project, comparison_id=gold.pk, choice="b"
    )
    with pytest.raises(services.Conflict):
        services.qualification_answer(
            annotator=annotator, project=project, comparison_id=gold.pk, choice="a"
        )
    assert QualificationAnswer.objects.count() == 1
    assert not QualificationAnswer.objects.get().correct
    assert Onboarding.objects.get().qualified_at is None
