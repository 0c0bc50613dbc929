"""The queue through the API: lease, judge (with `next`), retry, skip, undo, errors, scoping."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from labeling.models import Assignment, AssignmentStatus, Comparison, Judgment, Project
from tests.factories import ComparisonFactory, ProjectFactory


def _next(client: APIClient, project: Project) -> Any:
    return client.post(f"/api/v1/projects/{project.pk}/queue/next/")


def _judge(client: APIClient, comparison_id: int, query: str = "", **body: Any) -> Any:
    return client.post(
        f"/api/v1/comparisons/{comparison_id}/judgments/{query}", body, format="json"
    )


def test_next_returns_lease_in_shown_order(
    api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    response = _next(api, project)
    assert response.status_code == 200
    body = response.json()
    comparison = queue[0]
    lease = Assignment.objects.get(pk=body["assignment"])
    assert body["comparison"] == comparison.pk and body["project"] == project.pk
    assert body["prompt"] == {"id": comparison.prompt_id, "messages": comparison.prompt.messages}
    shown = {"a": comparison.response_a, "b": comparison.response_b}
    assert body["shown_left"] == lease.shown_left
    assert body["left"]["canonical"] == lease.shown_left
    assert body["right"]["canonical"] == ("b" if lease.shown_left == "a" else "a")
    for side in ("left", "right"):
        response_row = shown[body[side]["canonical"]]
        assert body[side]["id"] == response_row.pk and body[side]["text"] == response_row.text
    assert body["expires_at"] and body["leased_at"]
    assert _next(api, project).json()["assignment"] == lease.pk


def test_next_on_empty_queue_is_204(api: APIClient, project: Project) -> None:
    response = _next(api, project)
    assert response.status_code == 204 and response.content == b""


def test_next_in_other_project_is_404(api: APIClient, project: Project) -> None:
    other = ProjectFactory.create()
    ComparisonFactory.create(project=other)
    assert _next(api, other).status_code == 404
    assert not Assignment.objects.exists()


def test_submit_then_retry_is_idempotent(
    api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    lease = _next(api, project).json()
    first = _judge(
        api, lease["comparison"], choice="a", strength=3, rationale="clearer", time_spent_ms=1200
    )
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["created"] is True and body["choice"] == "a" and body["strength"] == 3
    assert body["shown_left"] == lease["shown_left"]
    assert body["shown_choice"] == ("left" if lease["shown_left"] == "a" else "right")
    assert "next" not in body
    retry = _judge(api, lease["comparison"], choice="b", strength=1)
    assert retry.status_code == 200
    assert retry.json()["id"] == body["id"] and retry.json()["choice"] == "a"
    assert retry.json()["created"] is False
    assert Judgment.objects.count() == 1
    assert Comparison.objects.get(pk=lease["comparison"]).judgment_count == 1


@pytest.mark.parametrize("via", ["body", "query"])
def test_submit_with_next_returns_next_lease(
    api: APIClient, project: Project, queue: list[Comparison], via: str
) -> None:
    lease = _next(api, project).json()
    if via == "body":
        response = _judge(api, lease["comparison"], choice="tie", next=True)
    else:
        response = _judge(api, lease["comparison"], query="?next=1", choice="tie")
    assert response.status_code == 201
    nxt = response.json()["next"]
    assert nxt["comparison"] == queue[1].pk
    assert Assignment.objects.get(pk=nxt["assignment"]).status == AssignmentStatus.ACTIVE


def test_submit_with_next_on_last_comparison_gives_null(api: APIClient, project: Project) -> None:
    only = ComparisonFactory.create(project=project)
    _next(api, project)
    response = _judge(api, only.pk, choice="both_bad", next=True)
    assert response.status_code == 201 and response.json()["next"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"choice": "left", "strength": 2}, "choice"),
        ({"choice": "tie", "strength": 2}, "strength"),
        ({"choice": "a"}, "strength"),
        ({"choice": "a", "strength": 7}, "strength"),
        ({"choice": "a", "strength": "strong"}, "strength"),
        ({"choice": "a", "strength": 2, "flags": ["nonsense"]}, "flags"),
        ({"choice": "b", "strength": 2, "time_spent_ms": -5}, "time_spent_ms"),
        ({}, "choice"),
    ],
)
def test_bad_judgment_is_400_naming_the_field(
    api: APIClient, project: Project, queue: list[Comparison], body: dict[str, Any], field: str
) -> None:
    lease = _next(api, project).json()
    response = _judge(api, lease["comparison"], **body)
    assert response.status_code == 400
    error = response.json()
    assert error["field"] == field and field in error["error"]
    assert not Judgment.objects.exists()


def test_submit_without_lease_is_409(
    api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    response = _judge(api, queue[2].pk, choice="tie")
    assert response.status_code == 409
    assert "claim it from the queue" in response.json()["error"]


def test_submit_in_other_project_is_404(api: APIClient, project: Project) -> None:
    foreign = ComparisonFactory.create(project=ProjectFactory.create())
    response = _judge(api, foreign.pk, choice="tie")
    assert response.status_code == 404
    assert _judge(api, 987_654, choice="tie").status_code == 404
    assert not Judgment.objects.exists()


def test_admin_may_label_anywhere(
    admin_api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    lease = _next(admin_api, project).json()
    assert _judge(admin_api, lease["comparison"], choice="tie").status_code == 201


def test_skip_then_next(api: APIClient, project: Project, queue: list[Comparison]) -> None:
    lease = _next(api, project).json()
    response = api.post(f"/api/v1/projects/{project.pk}/queue/skip/", {"next": True}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["skipped"] == lease["assignment"] and body["comparison"] == queue[0].pk
    assert body["next"]["comparison"] == queue[1].pk
    assert Assignment.objects.get(pk=lease["assignment"]).status == AssignmentStatus.SKIPPED
    stale = api.post(
        f"/api/v1/projects/{project.pk}/queue/skip/",
        {"assignment": lease["assignment"]},
        format="json",
    )
    assert stale.status_code == 409 and stale.json()["field"] == "assignment"


def test_skip_without_lease_is_409(api: APIClient, project: Project) -> None:
    assert api.post(f"/api/v1/projects/{project.pk}/queue/skip/").status_code == 409


def test_undo_gives_back_the_comparison(
    api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    lease = _next(api, project).json()
    _judge(api, lease["comparison"], choice="a", strength=2, next=True)
    response = api.post(f"/api/v1/projects/{project.pk}/queue/undo/")
    assert response.status_code == 200
    body = response.json()
    assert body["comparison"] == lease["comparison"] and body["shown_left"] == lease["shown_left"]
    assert body["left"] == lease["left"]
    assert not Judgment.objects.exists()
    again = api.post(f"/api/v1/projects/{project.pk}/queue/undo/")
    assert again.status_code == 400 and "no judgment to undo" in again.json()["error"]


def test_queue_next_query_count(
    api: APIClient, project: Project, queue: list[Comparison], django_assert_max_num_queries: Any
) -> None:
    # token, project, claim (4: the open lease, the next comparison, the lease's insert, the
    # shown content) and a savepoint pair (BEGIN/COMMIT outside tests).
    with django_assert_max_num_queries(8):
        assert _next(api, project).status_code == 200
    with django_assert_max_num_queries(6):
        assert _next(api, project).status_code == 200  # the open lease comes back


def test_submit_with_next_query_count(
    api: APIClient, project: Project, queue: list[Comparison], django_assert_max_num_queries: Any
) -> None:
    lease = _next(api, project).json()
    # token, comparison, submit (4: count, judgment and lease, insert, lease done), claim (3:
    # no open-lease look-up, the submit just closed it) and ONE savepoint pair: submit and claim
    # share a transaction (one commit per judgment).
    with django_assert_max_num_queries(11):
        response = _judge(api, lease["comparison"], choice="a", strength=1, next=True)
    assert response.status_code == 201
    # A retry: token, comparison, the count and the read that finds the stored judgment, rolled
    # back (in tests a savepoint: 3 statements; outside, BEGIN and ROLLBACK).
    with django_assert_max_num_queries(7):
        assert _judge(api, lease["comparison"], choice="a", strength=1).status_code == 200


def test_hand_built_payloads_match_their_serializers(
    api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    from labeling import selectors
    from labeling.api.serializers import (
        JudgmentSerializer,
        LeaseSerializer,
        judgment_payload,
        lease_payload,
    )

    lease = selectors.assignment_with_content(
        assignment=Assignment.objects.get(pk=_next(api, project).json()["assignment"])
    )
    payload = lease_payload(lease)
    assert dict(LeaseSerializer(payload).data) == payload
    _judge(api, lease.comparison_id, choice="a", strength=2, flags=["other"])
    judgment = Judgment.objects.get()
    assert judgment_payload(judgment) == dict(JudgmentSerializer(judgment).data)
