"""The review, judgment-edit and people endpoints: roles (annotators 403, outsiders 404,
reviewers review but do not manage), filters, pagination in constant queries, and refusals that
change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from labeling import services
from labeling.models import Adjudication, Comparison, Judgment, JudgmentRevision, Project
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory, UserFactory
from tests.labeling.api.conftest import token_client


@pytest.fixture
def reviewer(project: Project) -> Any:
    user = UserFactory.create(username="rev")
    project.reviewers.add(user)
    return user


def _judge(comparison: Any, user: Any, choice: str, strength: int | None, **extra: Any) -> Any:
    judgment = Judgment.objects.create(
        annotator=user, comparison=comparison, choice=choice, strength=strength, shown_left="b",
        **extra,
    )  # fmt: skip
    Comparison.objects.filter(pk=comparison.pk).update(judgment_count=comparison.judgments.count())
    return judgment


@pytest.fixture
def judged(project: Project, annotator: Any, other_annotator: Any) -> list[Any]:
    comparisons = []
    for index in range(3):
        prompt = PromptFactory.create(
            project=project, messages=[{"role": "user", "content": f"question {index}"}]
        )
        comparison = ComparisonFactory.create(
            project=project,
            prompt=prompt,
            response_a=ResponseFactory.create(prompt=prompt, text=f"first {index}"),
            response_b=ResponseFactory.create(prompt=prompt, text=f"second {index}"),
        )
        _judge(comparison, annotator, "a", 2)
        _judge(comparison, other_annotator, "b" if index == 1 else "a", 3, flags=["other"])
        comparisons.append(comparison)
    return comparisons


def test_roles_on_review_endpoints(
    project: Project, annotator: Any, reviewer: Any, admin_user: Any, judged: list[Any]
) -> None:
    comparison = judged[0]
    urls = [
        ("get", f"/api/v1/projects/{project.pk}/comparisons/", None),
        ("get", f"/api/v1/comparisons/{comparison.pk}/", None),
        ("post", f"/api/v1/comparisons/{comparison.pk}/comments/", {"text": "hm"}),
        ("post", f"/api/v1/comparisons/{comparison.pk}/adjudication/", {"choice": "tie"}),
    ]
    outsider = token_client(UserFactory.create(username="outsider"))
    for method, url, body in urls:
        assert getattr(token_client(annotator), method)(url, body, format="json").status_code == 403
        assert getattr(outsider, method)(url, body, format="json").status_code == 404
        assert getattr(APIClient(), method)(url, body, format="json").status_code == 401
    assert not comparison.comments.exists() and not Adjudication.objects.exists()
    for client in (token_client(reviewer), token_client(admin_user)):
        for method, url, body in urls:
            response = getattr(client, method)(url, body, format="json")
            assert response.status_code in (200, 201), (url, response.json())
    # Reviewers do not manage people or launch rounds.
    rev = token_client(reviewer)
    people = f"/api/v1/projects/{project.pk}/members/"
    assert rev.get(people).status_code == 403
    assert rev.post(people, {"username": "rev", "role": "annotator"}).status_code == 403
    assert (
        rev.post(f"/api/v1/projects/{project.pk}/invites/", {"role": "reviewer"}).status_code == 403
    )
    assert rev.post(f"/api/v1/projects/{project.pk}/rounds/", {}, format="json").status_code == 403
    assert rev.get(f"/api/v1/projects/{project.pk}/export/").status_code == 404  # not a member
    assert token_client(annotator).get(people).status_code == 403


def test_list_filters_and_pages_in_constant_queries(
    project: Project,
    reviewer: Any,
    annotator: Any,
    judged: list[Any],
    django_assert_num_queries: Any,
) -> None:
    client = token_client(reviewer)
    url = f"/api/v1/projects/{project.pk}/comparisons/"
    everything = client.get(url).json()
    assert everything["count"] == 3
    assert [c["id"] for c in everything["results"]] == [c.pk for c in reversed(judged)]
    first = everything["results"][0]
    assert first["response_a"]["text"] == "first 2" and len(first["votes"]) == 2
    assert {v["annotator"] for v in first["votes"]} == {"ann1", "ann2"}
    disagree = client.get(url, {"disagreement": "true"}).json()
    assert [c["id"] for c in disagree["results"]] == [judged[1].pk]
    assert disagree["results"][0]["disagreement"] is True
    assert client.get(url, {"q": "question 0"}).json()["count"] == 1
    assert client.get(url, {"flag": "other"}).json()["count"] == 3
    assert client.get(url, {"flag": "unsafe"}).json()["count"] == 0
    paged = client.get(url, {"page_size": 2, "page": 2}).json()
    assert (paged["count"], paged["pages"], len(paged["results"])) == (3, 2, 1)
    for params, field in (
        ({"gold": "perhaps"}, "gold"),
        ({"colour": "red"}, "colour"),
        ({"page_size": "0"}, "page_size"),
    ):
        response = client.get(url, params)
        assert response.status_code == 400 and response.json()["field"] == field
    assert client.get(url, {"page": 9}).status_code == 404

    # token, project, admin and reviewer checks, count, rows, votes: whatever the page size
    with django_assert_num_queries(7):
        client.get(url, {"page_size": 1})
    with django_assert_num_queries(7):
        client.get(url, {"page_size": 3})


def test_detail_comment_adjudicate_and_withdraw(
    project: Project, reviewer: Any, annotator: Any, judged: list[Any]
) -> None:
    client = token_client(reviewer)
    comparison = judged[1]
    mine = Judgment.objects.get(comparison=comparison, annotator=annotator)
    services.judgment_edit(annotator=annotator, judgment=mine, choice="b", strength=1)
    detail = client.get(f"/api/v1/comparisons/{comparison.pk}/").json()
    votes = {v["annotator"]: v for v in detail["votes"]}
    assert votes["ann1"]["choice"] == "b"
    assert votes["ann1"]["revisions"][0]["choice"] == "a"
    assert detail["comments"] == [] and detail["adjudication"] is None

    comment = client.post(
        f"/api/v1/comparisons/{comparison.pk}/comments/", {"text": "why b?"}, format="json"
    )
    assert comment.status_code == 201 and comment.json()["author"] == "rev"
    empty = client.post(f"/api/v1/comparisons/{comparison.pk}/comments/", {"text": " "})
    assert empty.status_code == 400 and comparison.comments.count() == 1

    url = f"/api/v1/comparisons/{comparison.pk}/adjudication/"
    refused = client.post(url, {"choice": "a"}, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "strength"
    done = client.post(url, {"choice": "a", "strength": 4, "note": "A cites"}, format="json")
    assert done.status_code == 200
    assert (done.json()["choice"], done.json()["adjudicator"]) == ("a", "rev")
    assert client.get(f"/api/v1/comparisons/{comparison.pk}/").json()["adjudication"]["note"] == (
        "A cites"
    )
    assert set(Judgment.objects.filter(comparison=comparison).values_list("choice", flat=True)) == {
        "b"
    }
    assert client.delete(url).status_code == 204
    assert client.delete(url).status_code == 404


def test_annotators_edit_their_own_judgments_by_api(
    project: Project, annotator: Any, other_annotator: Any, judged: list[Any]
) -> None:
    mine = Judgment.objects.get(comparison=judged[0], annotator=annotator)
    theirs = Judgment.objects.get(comparison=judged[0], annotator=other_annotator)
    api = token_client(annotator)
    edited = api.patch(
        f"/api/v1/judgments/{mine.pk}/",
        {"choice": "tie", "rationale": "same", "flags": ["other"]},
        format="json",
    )
    assert edited.status_code == 200, edited.json()
    assert edited.json()["choice"] == "tie" and edited.json()["revisions"][0]["choice"] == "a"
    assert api.patch(f"/api/v1/judgments/{theirs.pk}/", {"choice": "tie"}).status_code == 404
    bad = api.patch(f"/api/v1/judgments/{mine.pk}/", {"choice": "a"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "strength"
    services.comparisons_close(comparison_ids=[judged[0].pk])
    closed = api.patch(f"/api/v1/judgments/{mine.pk}/", {"choice": "b", "strength": 1})
    assert closed.status_code == 409
    assert Judgment.objects.get(pk=mine.pk).choice == "tie"
    assert JudgmentRevision.objects.filter(judgment=mine).count() == 1


def test_members_and_invites_by_api(
    project: Project, admin_user: Any, annotator: Any, other_annotator: Any
) -> None:
    api = token_client(admin_user)
    members = f"/api/v1/projects/{project.pk}/members/"
    assert {u["username"] for u in api.get(members).json()["annotator"]} == {"ann1", "ann2"}
    added = api.post(members, {"username": "ann1", "role": "reviewer"}, format="json")
    assert [u["username"] for u in added.json()["reviewer"]] == ["ann1"]
    bad_role = api.post(members, {"username": "ann1", "role": "owner"}, format="json")
    assert bad_role.status_code == 400 and bad_role.json()["field"] == "role"
    removed = api.delete(f"{members}{other_annotator.pk}/?role=annotator")
    assert [u["username"] for u in removed.json()["annotator"]] == ["ann1"]
    assert api.delete(f"{members}{other_annotator.pk}/?role=boss").status_code == 400

    invites = f"/api/v1/projects/{project.pk}/invites/"
    created = api.post(invites, {"role": "annotator", "note": "Kim"}, format="json")
    assert created.status_code == 201
    link = created.json()["url"].removeprefix("http://testserver")
    assert "url" not in api.get(invites).json()[0]
    assert api.post(invites, {"role": "annotator", "valid_days": 400}).status_code == 400
    from django.test import Client

    joined = Client().post(
        link, {"username": "kim", "password": "c0rrect-horse", "password_again": "c0rrect-horse"}
    )
    assert joined.status_code == 303
    kim = get_user_model().objects.get(username="kim")
    assert project.annotators.filter(pk=kim.pk).exists()
    assert api.get(invites).json()[0]["used_at"] is not None


def test_schema_lists_the_review_paths(db: Any) -> None:
    import json

    from drf_spectacular.validation import validate_schema

    schema = json.loads(APIClient().get("/api/v1/schema/?format=json").content)
    validate_schema(schema)
    paths = {
        "/api/v1/projects/{project_id}/comparisons/": {"get"},
        "/api/v1/comparisons/{comparison_id}/": {"get"},
        "/api/v1/comparisons/{comparison_id}/comments/": {"post"},
        "/api/v1/comparisons/{comparison_id}/adjudication/": {"post", "delete"},
        "/api/v1/judgments/{judgment_id}/": {"patch"},
        "/api/v1/projects/{project_id}/members/": {"get", "post"},
        "/api/v1/projects/{project_id}/members/{user_id}/": {"delete"},
        "/api/v1/projects/{project_id}/invites/": {"get", "post"},
    }
    for path, methods in paths.items():
        assert methods <= set(schema["paths"][path]), path
