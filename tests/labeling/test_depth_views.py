"""The labeling-depth pages (labeling.depth_views): the gate in front of the labeling page, the
ranking page without JavaScript, the onboarding page, and the acceptable check on the labeling
page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from labeling import services
from labeling.models import Judgment, Project, Ranking, RankingLease
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ranking_project(project: Project) -> Project:
    services.project_depth_set(project=project, task_kind="ranking")
    prompt = PromptFactory.create(project=project)
    for i in range(3):
        ResponseFactory.create(prompt=prompt, text=f"option {i}")
    services.ranking_sets_create(project=project)
    return project


def test_labeling_page_sends_ranking_projects_to_the_ranking_page(
    ranking_project: Project, annotator: Any
) -> None:
    client = _client(annotator)
    response = client.get(reverse("label", args=[ranking_project.pk]))
    assert response.status_code == 303
    assert response["Location"] == reverse("rank", args=[ranking_project.pk])
    swapped = client.post(reverse("label", args=[ranking_project.pk]), headers=HTMX)
    assert swapped["HX-Redirect"] == reverse("rank", args=[ranking_project.pk])


def test_rank_without_javascript(ranking_project: Project, annotator: Any) -> None:
    client = _client(annotator)
    url = reverse("rank", args=[ranking_project.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'id="rank-list"' in page.content
    lease = RankingLease.objects.get(annotator=annotator)
    x, y, z = lease.display_order

    bad = client.post(url, {"lease": lease.pk, f"rank-{x}": "1", f"rank-{y}": "7"})
    assert bad.status_code == 422 and b"Ranks go from 1 to 3; got 7" in bad.content
    missing = client.post(url, {"lease": lease.pk, f"rank-{x}": "1", f"rank-{y}": "2"})
    assert missing.status_code == 422 and b"Give every response a rank" in missing.content
    one_tie = {"lease": lease.pk, f"rank-{x}": "1", f"rank-{y}": "1", f"rank-{z}": "1"}
    assert client.post(url, one_tie).status_code == 422
    assert not Ranking.objects.exists()

    done = client.post(
        url, {"lease": lease.pk, f"rank-{x}": "2", f"rank-{y}": "1", f"rank-{z}": "2"}
    )
    assert done.status_code == 303
    ranking = Ranking.objects.get(annotator=annotator)
    assert ranking.order == [[y], sorted([x, z])]
    assert Judgment.objects.filter(ranking=ranking).count() == 3
    assert b"nothing left to rank" in client.get(url).content


def test_rank_page_fragment_shows_the_error_in_the_panel(
    ranking_project: Project, annotator: Any
) -> None:
    client = _client(annotator)
    url = reverse("rank", args=[ranking_project.pk])
    client.get(url)
    lease = RankingLease.objects.get(annotator=annotator)
    response = client.post(url, {"lease": lease.pk}, headers=HTMX)
    assert response.status_code == 422
    assert response.content.lstrip().startswith(b'<div id="rank-panel"')
    assert "HX-Request" in response["Vary"]


def test_rank_page_sends_pairwise_projects_back(project: Project, annotator: Any) -> None:
    response = _client(annotator).get(reverse("rank", args=[project.pk]))
    assert response.status_code == 303 and response["Location"] == reverse(
        "label", args=[project.pk]
    )


def test_onboarding_without_javascript_tells_the_result_after_the_redirect(
    project: Project, annotator: Any
) -> None:
    services.project_depth_set(
        project=project, onboarding_required=True, qualification_items=1, qualification_pass_mark=1
    )
    item = ComparisonFactory.create(project=project, gold_answer="b")
    client = _client(annotator)
    client.post(reverse("onboarding_acknowledge", args=[project.pk]))
    answer = reverse("onboarding_answer", args=[project.pk])
    wrong = client.post(answer, {"comparison": item.pk, "choice": "a"}, follow=True)
    assert wrong.redirect_chain[-1][1] == 303
    assert b"under the pass mark" in wrong.content
    right = client.post(answer, {"comparison": item.pk, "choice": "b"}, follow=True)
    assert b"Passed with 100%" in right.content and b'id="start-work"' in right.content


def test_onboarding_page_flow(project: Project, annotator: Any) -> None:
    services.project_depth_set(
        project=project, onboarding_required=True, qualification_items=1, qualification_pass_mark=1
    )
    item = ComparisonFactory.create(project=project, gold_answer="b")
    ComparisonFactory.create(project=project)
    client = _client(annotator)
    label = reverse("label", args=[project.pk])
    onboarding = reverse("onboarding", args=[project.pk])
    assert client.get(label)["Location"] == onboarding
    page = client.get(onboarding)
    assert b'id="acknowledge"' in page.content and b"Prefer the" in page.content

    acked = client.post(reverse("onboarding_acknowledge", args=[project.pk]), headers=HTMX)
    assert b'id="qualification-form"' in acked.content
    answer = reverse("onboarding_answer", args=[project.pk])
    wrong = client.post(answer, {"comparison": item.pk, "choice": "a"}, headers=HTMX)
    assert b"under the pass mark" in wrong.content
    assert client.get(label)["Location"] == onboarding
    right = client.post(answer, {"comparison": item.pk, "choice": "b"}, headers=HTMX)
    assert b"Passed with 100%" in right.content and b'id="start-work"' in right.content
    assert client.get(label).status_code == 200
    refused = client.post(answer, {"comparison": item.pk, "choice": "maybe"}, headers=HTMX)
    assert refused.status_code == 422


def test_labeling_page_asks_whether_acceptable(project: Project, annotator: Any) -> None:
    services.project_depth_set(project=project, ask_acceptable=True)
    ComparisonFactory.create(project=project)
    ComparisonFactory.create(project=project)
    client = _client(annotator)
    url = reverse("label", args=[project.pk])
    page = client.get(url)
    assert b'id="acceptable-fieldset"' in page.content
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    form = {"assignment": lease.pk, "choice": "left", "strength": "3"}
    missing = client.post(url, form, headers=HTMX)
    assert missing.status_code == 422 and b"acceptable?" in missing.content
    assert not Judgment.objects.exists()
    assert client.post(url, {**form, "acceptable": "no"}).status_code == 303
    assert Judgment.objects.get().acceptable is False
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    both_bad = {"assignment": lease.pk, "choice": "both_bad"}
    assert client.post(url, both_bad).status_code == 303  # both bad needs no answer
    assert Judgment.objects.filter(choice="both_bad").get().acceptable is None


def test_projects_without_the_features_are_unchanged(project: Project, annotator: Any) -> None:
    ComparisonFactory.create(project=project)
    page = _client(annotator).get(reverse("label", args=[project.pk]))
    assert page.status_code == 200 and b"acceptable-fieldset" not in page.content


def test_settings_page_for_admins(project: Project, admin_user: Any, annotator: Any) -> None:
    url = reverse("depth_settings", args=[project.pk])
    assert _client(annotator).get(url).status_code == 403
    client = _client(admin_user)
    assert b"Ranking sets" in client.get(url).content
    detail = client.get(reverse("project_detail", args=[project.pk]))
    assert url.encode() in detail.content
    form = {
        "action": "settings",
        "task_kind": "ranking",
        "ask_acceptable": "on",
        "qualification_items": "3",
        "qualification_pass_mark": "0.75",
    }
    assert client.post(url, form).status_code == 303
    project.refresh_from_db()
    assert (project.task_kind, project.ask_acceptable, project.onboarding_required) == (
        "ranking",
        True,
        False,
    )
    assert (project.qualification_items, project.qualification_pass_mark) == (3, 0.75)
    bad = client.post(url, {**form, "qualification_pass_mark": "2"})
    assert bad.status_code == 422
    project.refresh_from_db()
    assert project.qualification_pass_mark == 0.75

    prompt = PromptFactory.create(project=project)
    for i in range(5):
        ResponseFactory.create(prompt=prompt, text=f"r{i}")
    assert client.post(url, {"action": "sets", "size": "4"}).status_code == 303
    assert project.ranking_sets.get().size == 4
    assert client.post(url, {"action": "sets", "size": "12"}).status_code == 422
