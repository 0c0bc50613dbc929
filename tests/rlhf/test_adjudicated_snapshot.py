"""A round trains on reviewers' adjudications (``snapshot.adjudicated``, ``prefer`` by default):
an adjudicated comparison yields the adjudication's decision, not its votes'. Validated at launch
(400 naming the field), stored in the round's config and frozen export parameters (the export
of the snapshot holds exactly the rows it trains on), shown on the round page; ``ignore`` and
rounds stored before the option existed keep the votes' decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling import preferences
from labeling.models import Adjudication, Comparison, Judgment, Project, Prompt, Split
from rlhf import methods, selectors
from rlhf.methods import ConfigError, resolve_config
from rlhf.models import Round, RoundStatus
from tests.factories import UserFactory
from tests.labeling.planted import comparison_add, planted_project


def test_the_option_is_validated_and_prefers_adjudications_by_default() -> None:
    assert methods.ADJUDICATED == preferences.ADJUDICATED
    assert resolve_config("dpo")["snapshot"]["adjudicated"] == "prefer"
    assert resolve_config("kto")["snapshot"]["adjudicated"] == "prefer"
    with pytest.raises(ConfigError) as error:
        resolve_config("dpo", {"snapshot": {"adjudicated": "always"}})
    assert error.value.field == "snapshot.adjudicated"
    assert "ignore, prefer" in str(error.value)


@pytest.fixture
def project(db: Any) -> Project:
    project = planted_project()
    reviewer = UserFactory.create(username="reviewer", role="admin")
    now = timezone.now()
    # The planted annotators outvoted good0 here (B); the reviewer sides with good0.
    Adjudication.objects.create(
        comparison=Comparison.objects.get(project=project, prompt__external_id="outvoted"),
        choice="a",
        strength=4,
        adjudicator=reviewer,
        created_at=now,
        updated_at=now,
    )
    return project


def _chosen(rows: list[dict[str, Any]], prompt: str) -> list[str]:
    return [
        row["chosen"] if isinstance(row["chosen"], str) else row["chosen"][0]["content"]
        for row in rows
        if row["prompt"][0]["content"] == prompt
    ]


def test_the_adjudication_decides_its_comparison_unless_ignored(project: Project) -> None:
    ids = selectors.snapshot_judgment_ids(project, {"rounds": "all"})
    assert _chosen(selectors.preference_rows(ids, {"adjudicated": "prefer"}), "outvoted") == [
        "A for outvoted"
    ]
    assert _chosen(selectors.preference_rows(ids, {"adjudicated": "ignore"}), "outvoted") == [
        "B for outvoted"
    ]
    # a round stored before the option existed: the votes decide, as they did then
    assert _chosen(selectors.preference_rows(ids, {}), "outvoted") == ["B for outvoted"]
    kto = selectors.kto_rows(ids, {"adjudicated": "prefer"})
    assert {
        (r["completion"], r["label"]) for r in kto if r["prompt"][0]["content"] == "outvoted"
    } == {
        ("A for outvoted", True),
        ("B for outvoted", False),
    }


def test_a_launched_round_trains_on_and_exports_the_adjudication(
    project: Project, settings: Any
) -> None:
    settings.PAIRWISE_MIN_SNAPSHOT = 10
    admin = UserFactory.create(username="boss", role="admin")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=admin)[0].key}")
    url = f"/api/v1/projects/{project.pk}/rounds/"
    refused = api.post(
        url, {"method": "dpo", "config": {"snapshot": {"adjudicated": "yes"}}}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["field"] == "snapshot.adjudicated"
    assert Round.objects.count() == 0

    launched = api.post(url, {"method": "dpo", "config": {}}, format="json")
    assert launched.status_code == 201, launched.content
    round_ = Round.objects.get()
    assert round_.config["snapshot"]["adjudicated"] == "prefer"
    assert round_.snapshot_export["adjudicated"] == "prefer"
    trained = selectors.training_rows(
        "dpo", round_.snapshot_judgment_ids, round_.config["snapshot"]
    )
    assert _chosen(trained, "outvoted") == ["A for outvoted"]
    assert selectors.snapshot_hash(trained) == round_.snapshot_hash
    response = api.get(selectors.round_export_url(round_))
    assert response.status_code == 200
    exported = [
        json.loads(line)
        for line in b"".join(response.streaming_content).splitlines()  # type: ignore[attr-defined]
    ]
    assert _chosen(exported, "outvoted") == ["A for outvoted"]
    assert len(exported) == len(trained)

    page = Client()
    page.force_login(admin)
    html = page.get(f"/rounds/{round_.pk}/").content.decode()
    assert "reviewers' adjudications <b>decide their comparisons</b>" in html

    Round.objects.filter(pk=round_.pk).update(status=RoundStatus.FAILED)  # one round at a time
    ignoring = api.post(
        url, {"method": "dpo", "config": {"snapshot": {"adjudicated": "ignore"}}}, format="json"
    )
    assert ignoring.status_code == 201, ignoring.content
    second = Round.objects.get(pk=ignoring.json()["id"])
    assert "adjudicated" not in second.snapshot_export
    rows = selectors.training_rows("dpo", second.snapshot_judgment_ids, second.config["snapshot"])
    assert _chosen(rows, "outvoted") == ["B for outvoted"]
    assert "reviewers' adjudications ignored" in page.get(f"/rounds/{second.pk}/").content.decode()


def test_the_round_keeps_the_adjudication_it_launched_with(
    project: Project, tmp_path: Path, settings: Any
) -> None:
    settings.PAIRWISE_MIN_SNAPSHOT = 10
    from rlhf import runner, services

    # An adjudicated comparison on a held-out prompt: no snapshot takes it, so no round keeps it.
    held_out = comparison_add(project, "held-out question")
    Prompt.objects.filter(pk=held_out.prompt_id).update(split=Split.TEST)
    Judgment.objects.create(
        annotator=UserFactory.create(username="judge"), comparison=held_out, choice="a", strength=2
    )
    now = timezone.now()
    Adjudication.objects.create(
        comparison=held_out, choice="b", strength=3, created_at=now, updated_at=now
    )
    # reward_pairs 0: the policy step's data file is planned below without a reward step first
    round_ = services.round_launch(
        project=project, method="dpo", config={"policy": {"reward_pairs": 0}}
    )
    outvoted = Comparison.objects.get(project=project, prompt__external_id="outvoted")
    assert round_.snapshot_adjudications == {str(outvoted.pk): ["a", 4]}
    launched_hash = round_.snapshot_hash
    # The reviewer changes their mind after launch: the round trains on what it launched with.
    Adjudication.objects.filter(comparison=outvoted).update(choice="b", strength=2)
    round_.refresh_from_db()
    for rows in (
        selectors.reward_training_rows(round_),
        selectors.preference_rows(
            round_.snapshot_judgment_ids,
            round_.config["snapshot"],
            selectors.frozen_adjudications(round_),
        ),
    ):
        assert _chosen(rows, "outvoted") == ["A for outvoted"]
    assert selectors.snapshot_hash(selectors.training_rows(
        "dpo", round_.snapshot_judgment_ids, round_.config["snapshot"],
        selectors.frozen_adjudications(round_),
    )) == launched_hash  # fmt: skip
    # the data file the policy step writes
    written = runner._policy_inputs("offline-pairs", round_, tmp_path)
    assert _chosen(runner.read_jsonl(Path(written["data"])), "outvoted") == ["A for outvoted"]
    # an export made now shows the new decision: the round's hash is the one that differs
    assert (
        selectors.snapshot_hash(
            selectors.preference_rows(round_.snapshot_judgment_ids, round_.config["snapshot"])
        )
        != launched_hash
    )


def test_the_rows_a_step_trained_on_stay_downloadable_after_the_adjudication_changes(
    project: Project, fake_engine: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The export link reads today's adjudications; ``GET /api/v1/rounds/{id}/rows/`` gives the
    file each step was given, so it still holds the rows the round trained on."""
    settings.PAIRWISE_MIN_SNAPSHOT = 10
    from rlhf import services
    from rlhf.models import Step

    admin = UserFactory.create(username="boss", role="admin")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=admin)[0].key}")
    queued = services.round_launch(project=project, method="dpo", config={})
    not_yet = api.get(f"/api/v1/rounds/{queued.pk}/rows/")
    assert not_yet.status_code == 409
    assert "round 1's policy step has not started" in not_yet.json()["error"]
    Round.objects.filter(pk=queued.pk).update(status=RoundStatus.FAILED)  # one round at a time

    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(
            project=project, method="dpo", config={"policy": {"reward_pairs": 0}}
        )
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    body = api.get(f"/api/v1/rounds/{round_.pk}/").json()
    assert set(body["rows"]) == {"reward", "policy"}
    downloads = {}
    for step in (Step.POLICY, Step.REWARD):
        response = api.get(body["rows"][step])
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("application/jsonl")
        assert f"round-{round_.number}-{step}-rows.jsonl" in response["Content-Disposition"]
        downloads[step] = [json.loads(line) for line in response.content.splitlines()]
    assert _chosen(downloads[Step.POLICY], "outvoted") == ["A for outvoted"]
    assert selectors.snapshot_hash(downloads[Step.POLICY]) == round_.snapshot_hash
    assert api.get(body["rows"]["policy"])["X-Rows-Hash"] == round_.snapshot_hash
    assert selectors.snapshot_hash(downloads[Step.REWARD]) == round_.reward_snapshot_hash
    page = Client()
    page.force_login(admin)
    html = page.get(f"/rounds/{round_.pk}/").content.decode()
    assert 'data-testid="policy-rows"' in html and 'data-testid="reward-rows"' in html

    # The reviewer changes their mind: the export link now gives other rows, the download not.
    Adjudication.objects.filter(comparison__prompt__external_id="outvoted").update(
        choice="b", strength=2
    )
    response = api.get(selectors.round_export_url(round_))
    exported = [
        json.loads(line)
        for line in b"".join(response.streaming_content).splitlines()  # type: ignore[attr-defined]
    ]
    assert _chosen(exported, "outvoted") == ["B for outvoted"]
    again = api.get(body["rows"]["policy"])
    assert [json.loads(line) for line in again.content.splitlines()] == downloads[Step.POLICY]

    # a bad step is refused; annotators may not download
    bad = api.get(f"/api/v1/rounds/{round_.pk}/rows/?step=evaluate")
    assert bad.status_code == 400 and bad.json()["field"] == "step"
    annotator = APIClient()
    annotator.force_authenticate(UserFactory.create(username="annie"))
    assert annotator.get(body["rows"]["policy"]).status_code == 403
    # an online method's policy step trains on prompts: nothing to download there
    online = services.round_launch(project=project, method="grpo", config={})
    prompts_only = api.get(f"/api/v1/rounds/{online.pk}/rows/?step=policy")
    assert prompts_only.status_code == 404
    assert "trains on prompts and the reward model" in prompts_only.json()["error"]
    assert api.get(f"/api/v1/rounds/{online.pk}/rows/?step=reward").status_code == 409
