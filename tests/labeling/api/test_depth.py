"""API of the labeling depth (issue 13): rankings, their exports, the acceptable check and the
rewrite export, onboarding."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from labeling import services
from labeling.models import Comparison, Judgment, Project, Ranking
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory

pytestmark = pytest.mark.django_db


def _lines(response: Any) -> list[dict[str, Any]]:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line]


@pytest.fixture
def ranking_project(project: Project, admin_api: APIClient) -> Project:
    answer = admin_api.patch(
        f"/api/v1/projects/{project.pk}/labeling-settings/", {"task_kind": "ranking"}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["task_kind"] == "ranking"
    prompt = PromptFactory.create(project=project)
    for i in range(4):
        ResponseFactory.create(prompt=prompt, text=f"candidate {i}")
    made = admin_api.post(
        f"/api/v1/projects/{project.pk}/ranking-sets/", {"size": 4}, format="json"
    )
    assert made.status_code == 201 and made.json()["created"] == 1
    project.refresh_from_db()
    return project


def test_rank_through_the_api_and_export_both_ways(
    ranking_project: Project, api: APIClient, admin_api: APIClient
) -> None:
    project = ranking_project
    lease = api.post(f"/api/v1/projects/{project.pk}/rankings/next/")
    assert lease.status_code == 200
    body = lease.json()
    ids = [r["id"] for r in body["responses"]]
    assert len(ids) == 4 and body["prompt"]["messages"]
    url = f"/api/v1/ranking-sets/{body['ranking_set']}/rankings/"

    bad = api.post(url, {"order": ids[:3]}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "order"
    assert not Ranking.objects.exists()

    order = [ids[3], [ids[0], ids[1]], ids[2]]
    done = api.post(url, {"order": order, "time_spent_ms": 1200}, format="json")
    assert done.status_code == 201, done.json()
    assert len(done.json()["judgments"]) == 6
    again = api.post(url, {"order": order}, format="json")
    assert again.status_code == 200 and again.json()["created"] is False
    assert api.post(f"/api/v1/projects/{project.pk}/rankings/next/").status_code == 204

    rankings = _lines(admin_api.get(f"/api/v1/projects/{project.pk}/export/rankings/"))
    assert len(rankings) == 1
    assert rankings[0]["order"] == [[ids[3]], sorted([ids[0], ids[1]]), [ids[2]]]
    assert rankings[0]["ranks"][str(ids[0])] == rankings[0]["ranks"][str(ids[1])] == 2
    assert rankings[0]["pairs"] == 6 and rankings[0]["annotator"] == "ann1"

    pairs = _lines(admin_api.get(f"/api/v1/projects/{project.pk}/export/rankings/?as=pairs"))
    assert len(pairs) == 6
    assert {p["ranking_id"] for p in pairs} == {rankings[0]["ranking_id"]}
    assert sum(1 for p in pairs if p["choice"] == "tie" and p["chosen"] is None) == 1

    # the preference export reads the derived judgments like any others (ties dropped)
    trl = _lines(admin_api.get(f"/api/v1/projects/{project.pk}/export/?format=trl"))
    assert len(trl) == 5
    assert admin_api.get(f"/api/v1/projects/{project.pk}/export/rankings/?as=x").status_code == 400
    assert api.get(f"/api/v1/projects/{project.pk}/export/rankings/").status_code == 403


def test_pairwise_queue_refuses_in_a_ranking_project(
    ranking_project: Project, api: APIClient
) -> None:
    answer = api.post(f"/api/v1/projects/{ranking_project.pk}/queue/next/")
    assert answer.status_code == 409 and answer.json()["field"] == "task_kind"


def test_settings_are_checked(project: Project, admin_api: APIClient, api: APIClient) -> None:
    url = f"/api/v1/projects/{project.pk}/labeling-settings/"
    bad = admin_api.patch(url, {"qualification_pass_mark": 1.5}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "qualification_pass_mark"
    assert api.patch(url, {"task_kind": "ranking"}, format="json").status_code == 403
    project.refresh_from_db()
    assert project.task_kind == "pairwise"


# --- the acceptable check ------------------------------------------------------------------------


def test_unacceptable_and_both_bad_go_to_rewrite_not_to_pairs(
    project: Project, api: APIClient, admin_api: APIClient
) -> None:
    services.project_depth_set(project=project, ask_acceptable=True)
    fine, poor, bad = (ComparisonFactory.create(project=project) for _ in range(3))
    answers = {
        fine.pk: {"choice": "a", "strength": 3, "acceptable": True},
        poor.pk: {"choice": "b", "strength": 2, "acceptable": False},
        bad.pk: {"choice": "both_bad"},
    }
    for _ in range(3):
        lease = api.post(f"/api/v1/projects/{project.pk}/queue/next/").json()
        comparison = lease["comparison"]
        answer = api.post(
            f"/api/v1/comparisons/{comparison}/judgments/", answers[comparison], format="json"
        )
        assert answer.status_code == 201, answer.json()
    assert dict(Judgment.objects.values_list("comparison_id", "acceptable")) == {
        fine.pk: True,
        poor.pk: False,
        bad.pk: None,
    }
    trl = _lines(admin_api.get(f"/api/v1/projects/{project.pk}/export/?format=trl"))
    assert [row["chosen"] for row in trl] == [fine.response_a.text]
    kto = _lines(admin_api.get(f"/api/v1/projects/{project.pk}/export/?format=kto"))
    assert {row["completion"] for row in kto} == {fine.response_a.text, fine.response_b.text}
    raw = _lines(admin_api.get(f"/api/v1/projects/{project.pk}/export/?format=raw"))
    assert len(raw) == 3  # the raw export keeps every vote

    rewrite = _lines(admin_api.get(f"/api/v1/projects/{project.pk}/export/rewrite/"))
    by_id = {row["comparison_id"]: row for row in rewrite}
    assert set(by_id) == {poor.pk, bad.pk}
    assert by_id[poor.pk]["reason"] == "unacceptable"
    assert by_id[poor.pk]["best"] == poor.response_b.text
    assert by_id[bad.pk]["reason"] == "both_bad" and by_id[bad.pk]["best"] is None

    from labeling.preferences import snapshot_rows

    rows = snapshot_rows(Judgment.objects.values_list("pk", flat=True), both_bad="split")
    assert {row["chosen"] for row in rows} == {
        fine.response_a.text,
        bad.response_a.text,
        bad.response_b.text,
    }


def test_acceptable_with_both_bad_is_refused(project: Project, api: APIClient) -> None:
    ComparisonFactory.create(project=project)
    lease = api.post(f"/api/v1/projects/{project.pk}/queue/next/").json()
    answer = api.post(
        f"/api/v1/comparisons/{lease['comparison']}/judgments/",
        {"choice": "both_bad", "acceptable": True},
        format="json",
    )
    assert answer.status_code == 400 and answer.json()["field"] == "acceptable"
    assert not Judgment.objects.exists()


# --- onboarding ----------------------------------------------------------------------------------


@pytest.fixture
def onboarding_project(project: Project) -> tuple[Project, list[Comparison]]:
    services.project_depth_set(
        project=project,
        onboarding_required=True,
        qualification_items=2,
        qualification_pass_mark=1.0,
    )
    gold = [ComparisonFactory.create(project=project, gold_answer=a) for a in ("a", "b")]
    ComparisonFactory.create(project=project)  # live work (one for the admin, one for ann1)
    ComparisonFactory.create(project=project)
    return project, gold


def test_queue_answers_403_until_onboarded(
    onboarding_project: tuple[Project, list[Comparison]], api: APIClient, admin_api: APIClient
) -> None:
    project, gold = onboarding_project
    base = f"/api/v1/projects/{project.pk}"
    refused = api.post(f"{base}/queue/next/")
    assert refused.status_code == 403 and "guidelines" in refused.json()["error"]
    assert admin_api.post(f"{base}/queue/next/").status_code == 200  # admins are exempt

    early = api.post(f"{base}/onboarding/answers/", {"comparison": gold[0].pk, "choice": "a"})
    assert early.status_code == 409
    status = api.post(f"{base}/onboarding/acknowledge/").json()
    assert status["acknowledged"] and status["next_item"]["comparison"] == gold[0].pk
    refused = api.post(f"{base}/queue/next/")
    assert refused.status_code == 403 and "qualification" in refused.json()["error"]

    # attempt 1: one wrong answer, below the pass mark of 100%
    api.post(f"{base}/onboarding/answers/", {"comparison": gold[0].pk, "choice": "a"})
    failed = api.post(f"{base}/onboarding/answers/", {"comparison": gold[1].pk, "choice": "a"})
    body = failed.json()
    assert body["finished"] and not body["passed"] and body["score"] == 0.5
    assert body["attempt"] == 2 and body["answered"] == 0
    assert api.post(f"{base}/queue/next/").status_code == 403

    # attempt 2: all right
    api.post(f"{base}/onboarding/answers/", {"comparison": gold[0].pk, "choice": "a"})
    passed = api.post(f"{base}/onboarding/answers/", {"comparison": gold[1].pk, "choice": "b"})
    assert passed.json()["passed"] and passed.json()["ready"]
    lease = api.post(f"{base}/queue/next/")
    assert lease.status_code == 200
    assert not Judgment.objects.exists()  # qualification answers are not judgments

    not_an_item = api.post(f"{base}/onboarding/answers/", {"comparison": 99999, "choice": "a"})
    assert not_an_item.status_code == 400


def test_changed_guidelines_ask_again(
    onboarding_project: tuple[Project, list[Comparison]], api: APIClient
) -> None:
    project, _ = onboarding_project
    services.project_depth_set(project=project, qualification_items=0)
    base = f"/api/v1/projects/{project.pk}"
    api.post(f"{base}/onboarding/acknowledge/")
    assert api.post(f"{base}/queue/next/").status_code == 200
    Project.objects.filter(pk=project.pk).update(guidelines="New rules.")
    refused = api.post(f"{base}/queue/next/")
    assert refused.status_code == 403 and "guidelines" in refused.json()["error"]


def test_ranking_queue_is_gated_too(ranking_project: Project, api: APIClient) -> None:
    services.project_depth_set(project=ranking_project, onboarding_required=True)
    answer = api.post(f"/api/v1/projects/{ranking_project.pk}/rankings/next/")
    assert answer.status_code == 403 and answer.json()["field"] == "onboarding"


def test_undo_through_the_api(ranking_project: Project, api: APIClient) -> None:
    base = f"/api/v1/projects/{ranking_project.pk}"
    assert api.post(f"{base}/rankings/undo/").status_code == 400
    lease = api.post(f"{base}/rankings/next/").json()
    ids = [r["id"] for r in lease["responses"]]
    api.post(
        f"/api/v1/ranking-sets/{lease['ranking_set']}/rankings/", {"order": ids}, format="json"
    )
    back = api.post(f"{base}/rankings/undo/")
    assert back.status_code == 200
    assert [r["id"] for r in back.json()["responses"]] == ids
    assert not Ranking.objects.exists() and not Judgment.objects.exists()
