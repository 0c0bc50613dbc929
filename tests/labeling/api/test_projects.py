"""Projects: admins create and see all; others see those they annotate or review, with their
roles; the rest answer 404."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from labeling.models import Project
from tests.factories import ProjectFactory, UserFactory
from tests.labeling.api.conftest import token_client


def test_admin_creates_project_with_annotators(admin_api: APIClient, annotator: Any) -> None:
    response = admin_api.post(
        "/api/v1/projects/",
        {"name": "helpfulness", "judgments_per_comparison": 3, "annotators": ["ann1"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "helpfulness" and body["judgments_per_comparison"] == 3
    assert body["annotators"] == ["ann1"]
    project = Project.objects.get(pk=body["id"])
    assert list(project.annotators.all()) == [annotator]
    assert project.created_by is not None and project.created_by.username == "admin"


def test_create_errors_name_the_field(admin_api: APIClient, project: Project) -> None:
    duplicate = admin_api.post("/api/v1/projects/", {"name": project.name}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["field"] == "name"
    bad_k = admin_api.post(
        "/api/v1/projects/", {"name": "x", "judgments_per_comparison": 0}, format="json"
    )
    assert bad_k.status_code == 400 and bad_k.json()["field"] == "judgments_per_comparison"
    unknown = admin_api.post(
        "/api/v1/projects/", {"name": "y", "annotators": ["nobody"]}, format="json"
    )
    assert unknown.status_code == 400 and unknown.json()["field"] == "annotators"
    negative = admin_api.post(
        "/api/v1/projects/", {"name": "z", "max_pairs_per_prompt": -1}, format="json"
    )
    assert negative.status_code == 400 and negative.json()["field"] == "max_pairs_per_prompt"
    no_name = admin_api.post("/api/v1/projects/", {}, format="json")
    body = no_name.json()
    assert no_name.status_code == 400 and body["field"] == "name"
    assert body["error"].startswith("name:") and "name" in body["detail"]


def test_annotator_cannot_create_project(api: APIClient, project: Project) -> None:
    response = api.post("/api/v1/projects/", {"name": "mine"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "only admins may do this"
    assert not Project.objects.filter(name="mine").exists()


def test_annotator_lists_only_member_projects(api: APIClient, project: Project) -> None:
    ProjectFactory.create(name="someone else's")
    response = api.get("/api/v1/projects/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and [p["id"] for p in body["results"]] == [project.pk]
    assert "annotators" not in body["results"][0]
    assert body["results"][0]["roles"] == ["annotator"]


def test_a_reviewer_lists_and_reads_the_projects_they_review_with_their_roles(
    api: APIClient, annotator: Any, project: Project
) -> None:
    reviewed, both = ProjectFactory.create(name="reviewed"), ProjectFactory.create(name="both")
    ProjectFactory.create(name="someone else's")
    reviewer = UserFactory.create(username="rev")
    reviewed.reviewers.add(reviewer, annotator)
    both.reviewers.add(reviewer, annotator)
    both.annotators.add(reviewer)
    client = token_client(reviewer)
    with CaptureQueriesContext(connection) as two:
        listed = client.get("/api/v1/projects/")
    assert listed.status_code == 200
    for index in range(4):  # more projects, no more queries: the roles come with the list
        ProjectFactory.create(name=f"more {index}").reviewers.add(reviewer)
    with CaptureQueriesContext(connection) as six:
        assert client.get("/api/v1/projects/").json()["count"] == 6
    assert len(six.captured_queries) == len(two.captured_queries)
    roles = {p["name"]: p["roles"] for p in listed.json()["results"]}
    assert roles == {"reviewed": ["reviewer"], "both": ["annotator", "reviewer"]}
    mine = {
        p["id"]: p["roles"]
        for p in api.get("/api/v1/projects/").json()["results"]
        if not p["name"].startswith("more")
    }
    assert mine == {project.pk: ["annotator"], reviewed.pk: ["reviewer"], both.pk: ["reviewer"]}
    detail = client.get(f"/api/v1/projects/{reviewed.pk}/")
    assert detail.status_code == 200 and detail.json()["roles"] == ["reviewer"]
    assert client.get(f"/api/v1/projects/{project.pk}/").status_code == 404
    # reviewing grants no labeling: the queue stays the annotators'
    assert client.post(f"/api/v1/projects/{reviewed.pk}/queue/next/").status_code == 404


def test_an_admin_sees_their_roles_too(admin_api: APIClient, project: Project) -> None:
    created = admin_api.post("/api/v1/projects/", {"name": "fresh"}, format="json").json()
    assert created["roles"] == []
    listed = {p["id"]: p["roles"] for p in admin_api.get("/api/v1/projects/").json()["results"]}
    assert listed == {project.pk: [], created["id"]: []}
    fresh = Project.objects.get(pk=created["id"])
    assert fresh.created_by is not None
    fresh.reviewers.add(fresh.created_by)  # the admin who made it
    assert admin_api.get(f"/api/v1/projects/{created['id']}/").json()["roles"] == ["reviewer"]
    patched = admin_api.patch(
        f"/api/v1/projects/{created['id']}/", {"gold_rate": 0.1}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["roles"] == ["reviewer"]


def test_admin_lists_all_projects(
    admin_api: APIClient, project: Project, django_assert_max_num_queries: Any
) -> None:
    ProjectFactory.create_batch(5)
    with django_assert_max_num_queries(6):
        response = admin_api.get("/api/v1/projects/")
    body = response.json()
    assert body["count"] == 6
    mine = next(p for p in body["results"] if p["id"] == project.pk)
    assert sorted(mine["annotators"]) == ["ann1", "ann2"]


def test_project_detail_scoped(api: APIClient, admin_api: APIClient, project: Project) -> None:
    assert api.get(f"/api/v1/projects/{project.pk}/").json()["name"] == project.name
    other = ProjectFactory.create()
    for pk in (other.pk, 999_999):
        response = api.get(f"/api/v1/projects/{pk}/")
        assert response.status_code == 404
        assert response.json() == {
            "error": f"no project {pk}",
            "field": None,
            "detail": {"detail": f"no project {pk}"},
        }
    assert admin_api.get(f"/api/v1/projects/{other.pk}/").status_code == 200
