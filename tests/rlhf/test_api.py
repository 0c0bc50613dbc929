"""The tuning API: launch, watch, cancel, retry rounds; list and promote checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from rlhf import services
from rlhf.models import Checkpoint, Round, RoundStatus
from tests.factories import ProjectFactory, UserFactory


def token_client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_api(db: Any) -> APIClient:
    return token_client(UserFactory.create(username="boss", role="admin"))


@pytest.fixture
def annotator_api(db: Any) -> APIClient:
    return token_client(UserFactory.create(username="worker"))


@pytest.mark.django_db
def test_launch_watch_and_promote(
    admin_api: APIClient,
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        launched = admin_api.post(
            f"/api/v1/projects/{judged_project.pk}/rounds/",
            {"method": "robust", "config": {"policy": {"label_smoothing": 0.1}}},
            format="json",
        )
    assert launched.status_code == 201, launched.json()
    body = launched.json()
    assert body["method"] == "robust" and body["number"] == 1
    assert body["config"]["policy"]["loss_type"] == "robust"
    assert body["config"]["policy"]["label_smoothing"] == 0.1
    assert body["snapshot_size"] > 0

    detail = admin_api.get(f"/api/v1/rounds/{body['id']}/").json()
    assert detail["status"] == "succeeded"
    assert [r["step"] for r in detail["runs"]] == ["reward", "policy", "evaluate", "generate"]
    assert all(r["percent"] == 100 for r in detail["runs"])

    checkpoints = admin_api.get(f"/api/v1/projects/{judged_project.pk}/checkpoints/").json()
    assert [c["kind"] for c in checkpoints] == ["policy", "reward", "policy"]
    base, _, candidate = checkpoints
    assert base["is_base"] and base["is_champion"]
    assert candidate["parent"] == base["id"]
    assert candidate["metrics"]["evaluate"]["win_rate"] == 0.6
    assert candidate["human_win_rate_opponent"] == base["id"]
    assert candidate["human_win_rate"] == {
        "opponent": base["id"], "wins": 0, "losses": 0, "ties": 0, "judged": 0, "rate": None, "lower": None, "upper": None,
    }  # fmt: skip
    assert candidate["strength"] is None  # no judged pair between checkpoints yet

    # Nobody judged it against the champion: the gate refuses, saying why; force promotes.
    refused = admin_api.post(f"/api/v1/checkpoints/{candidate['id']}/promote/")
    assert refused.status_code == 409
    assert "judged no pair" in refused.json()["error"], refused.json()
    promoted = admin_api.post(
        f"/api/v1/checkpoints/{candidate['id']}/promote/", {"force": True}, format="json"
    )
    assert promoted.status_code == 200
    assert promoted.json()["is_champion"] is True
    record = promoted.json()["metrics"]["promotion"]
    assert record["forced"] is True and record["by"] == "boss"
    champion = Checkpoint.objects.champion_of(judged_project)
    assert champion is not None and champion.pk == candidate["id"]
    reward_id = checkpoints[1]["id"]
    refused = admin_api.post(f"/api/v1/checkpoints/{reward_id}/promote/")
    assert refused.status_code == 400
    assert refused.json()["field"] == "checkpoint"


@pytest.mark.django_db
def test_launch_errors_are_json_with_the_field(
    admin_api: APIClient, judged_project: Any, fake_engine: Path
) -> None:
    url = f"/api/v1/projects/{judged_project.pk}/rounds/"
    ppo = admin_api.post(url, {"method": "ppo"}, format="json")
    assert ppo.status_code == 400
    assert ppo.json()["field"] == "method"
    assert "grpo" in ppo.json()["error"]
    bad = admin_api.post(url, {"method": "grpo", "config": {"policy": {"beta": 0}}}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"] == "policy.beta must be > 0 (the KL penalty)"
    assert bad.json()["field"] == "policy.beta"
    reward = admin_api.post(
        url, {"method": "dpo", "config": {"snapshot": {"reward_rounds": "some"}}}, format="json"
    )
    assert reward.status_code == 400
    assert reward.json()["field"] == "snapshot.reward_rounds"
    assert "snapshot.reward_rounds must be 'all', 'latest', 'newest'" in reward.json()["error"]
    first = admin_api.post(url, {"method": "dpo"}, format="json")  # not committed: stays queued
    assert first.status_code == 201
    second = admin_api.post(url, {"method": "dpo"}, format="json")
    assert second.status_code == 409
    assert admin_api.post("/api/v1/projects/99999/rounds/", {}, format="json").status_code == 404


@pytest.mark.django_db
def test_cancel_and_retry(admin_api: APIClient, judged_project: Any, fake_engine: Path) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")
    cancelled = admin_api.post(f"/api/v1/rounds/{round_.pk}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = admin_api.post(f"/api/v1/rounds/{round_.pk}/cancel/")
    assert again.status_code == 409
    retried = admin_api.post(f"/api/v1/rounds/{round_.pk}/retry/")
    assert retried.status_code == 200
    assert retried.json()["status"] == "queued"
    assert Round.objects.get(pk=round_.pk).status == RoundStatus.QUEUED


@pytest.mark.django_db
def test_only_admins(annotator_api: APIClient, judged_project: Any) -> None:
    anonymous = APIClient()
    url = f"/api/v1/projects/{judged_project.pk}/rounds/"
    assert anonymous.get(url).status_code == 401
    for method, path in (
        ("get", url),
        ("post", url),
        ("get", f"/api/v1/projects/{judged_project.pk}/checkpoints/"),
        ("post", "/api/v1/checkpoints/1/promote/"),
        ("get", "/api/v1/rounds/1/"),
        ("post", "/api/v1/rounds/1/cancel/"),
        ("post", "/api/v1/checkpoints/1/generate/"),
        ("get", "/api/v1/checkpoints/1/samples/"),
        ("post", "/api/v1/checkpoints/1/human-eval/"),
    ):
        response = getattr(annotator_api, method)(path)
        assert response.status_code == 403, path
        assert "admins" in response.json()["error"]


@pytest.mark.django_db
def test_set_the_project_model(
    admin_api: APIClient, annotator_api: APIClient, demo_project: Any
) -> None:
    spec = services.model_spec_save(name="qwen", base_model="Qwen/Qwen2.5-0.5B-Instruct")
    url = f"/api/v1/projects/{demo_project.pk}/model/"
    assert annotator_api.post(url, {"model_spec": "qwen"}, format="json").status_code == 403
    missing = admin_api.post(url, {"model_spec": "nope"}, format="json")
    assert missing.status_code == 400 and missing.json()["field"] == "model_spec"
    done = admin_api.post(url, {"model_spec": "qwen"}, format="json")
    assert done.status_code == 200 and done.json()["model_spec"] == "qwen"
    assert done.json()["is_base"] is True
    assert services.checkpoint_champion(project=demo_project).model_spec == spec


@pytest.mark.django_db
@pytest.mark.parametrize("rounds", [1, 4])
def test_list_query_counts_do_not_grow_with_the_history(
    admin_api: APIClient, round_history: Any, django_assert_num_queries: Any, rounds: int
) -> None:
    """token, user, admin group, then the endpoint's own: the same with 1 round or 4 (4 attempts
    of each step, 8 checkpoints)."""
    project = ProjectFactory.create()
    latest = round_history(project, rounds, attempts=rounds)[-1]
    # + project, rounds, all their runs, the human judgments between all their checkpoints
    with django_assert_num_queries(6):
        listed = admin_api.get(f"/api/v1/projects/{project.pk}/rounds/").json()
    assert [len(r["runs"]) for r in listed] == [4] * rounds
    assert {run["attempt"] for r in listed for run in r["runs"]} == {rounds}  # the newest
    with django_assert_num_queries(5):  # + round, its runs, its checkpoint's human judgments
        detail = admin_api.get(f"/api/v1/rounds/{latest.pk}/").json()
    assert [run["step"] for run in detail["runs"]] == ["reward", "policy", "evaluate", "generate"]
    # + project, checkpoints, all judgments between them, the rounds that made them (the gate)
    with django_assert_num_queries(6):
        checkpoints = admin_api.get(f"/api/v1/projects/{project.pk}/checkpoints/").json()
    assert len(checkpoints) == 1 + 2 * rounds
    candidates = [c for c in checkpoints if c["kind"] == "policy" and not c["is_base"]]
    # Each was judged (and won) once against the base, the champion; its named opponent is its
    # parent (the previous round's policy from round 2 on), which it never met.
    assert [c["human_win_rate_vs_champion"]["wins"] for c in candidates] == [1] * rounds
    assert [c["human_win_rate_opponent"] for c in candidates] == [c["parent"] for c in candidates]
    assert [c["human_win_rate"]["wins"] for c in candidates] == [1] + [0] * (rounds - 1)
    assert all(c["strength"]["judged"] == 1 for c in candidates)
    # one won pair each against the champion decides nothing: the gate says so, with the reason
    assert all(c["gate"]["passed"] is False for c in candidates)
    assert all("includes 50%" in c["gate"]["reason"] for c in candidates)
    with django_assert_num_queries(5):  # + project, policies, all judgments between them
        board = admin_api.get(f"/api/v1/projects/{project.pk}/leaderboard/").json()
    assert len(board) == 1 + rounds and board[-1]["judged"] == rounds  # the base lost them all
