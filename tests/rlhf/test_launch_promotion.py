"""A launch that first puts the latest round's candidate through the promotion gate
(``promote_pending``): the round starts from it when humans have shown it better, from the
champion otherwise, records what the gate said, and a refused launch promotes nothing. The same
from the page (the box, checked by default, and the preview), the API and the command."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from labeling.services import LabelingError
from rlhf import selectors, services
from rlhf.models import Checkpoint, Round, RoundStatus
from tests.factories import UserFactory
from tests.rlhf.test_api import token_client
from tests.rlhf.test_services import judged_pairs


@pytest.fixture
def pending(pending_candidate: Checkpoint) -> Checkpoint:
    return pending_candidate


def _base(project: Any) -> Checkpoint:
    return Checkpoint.objects.get(project=project, parent=None, kind="policy")


@pytest.mark.django_db
def test_a_candidate_humans_prefer_is_promoted_first(pending: Checkpoint) -> None:
    project, base = pending.project, _base(pending.project)
    judged_pairs(pending, base, wins=40, losses=10)
    found = selectors.pending_candidate(project)
    assert found is not None and found.checkpoint == pending and found.gate.passed
    round_ = services.round_launch(project=project, promote_pending=True)
    assert round_.number == 2 and round_.parent_checkpoint == pending
    assert Checkpoint.objects.champion_of(project) == pending
    decision = round_.launch_decision
    assert decision["promoted"] is True and decision["forced"] is False
    assert (decision["round"], decision["checkpoint"], decision["champion"]) == (
        1,
        pending.pk,
        base.pk,
    )
    assert "lies above 50%" in decision["reason"]
    pending.refresh_from_db()
    assert pending.metrics["promotion"]["by"] == "a launch (at launch)"
    # It trains on the batch about the new champion: the one of the round that made it.
    assert selectors.snapshot_select(project, round_.config["snapshot"], "dpo").rounds == [1]
    assert selectors.pending_candidate(project) is None  # nothing left to decide


@pytest.mark.django_db
def test_an_undecided_candidate_stays_a_candidate_and_the_round_says_why(
    pending: Checkpoint,
) -> None:
    project, base = pending.project, _base(pending.project)
    judged_pairs(pending, base, wins=103, losses=88)  # 54% of 191: includes 50%
    round_ = services.round_launch(project=project, promote_pending=True)
    assert round_.parent_checkpoint == base and Checkpoint.objects.champion_of(project) == base
    assert round_.launch_decision["promoted"] is False
    assert "includes 50%" in round_.launch_decision["reason"]
    assert "more judged pairs would decide it" in round_.launch_decision["reason"]


@pytest.mark.django_db
def test_without_promote_pending_the_champion_stays(pending: Checkpoint) -> None:
    project, base = pending.project, _base(pending.project)
    judged_pairs(pending, base, wins=40, losses=10)
    round_ = services.round_launch(project=project)
    assert round_.parent_checkpoint == base and round_.launch_decision == {}
    assert Checkpoint.objects.champion_of(project) == base


@pytest.mark.django_db
def test_a_refused_launch_promotes_nothing(pending: Checkpoint) -> None:
    project, base = pending.project, _base(pending.project)
    judged_pairs(pending, base, wins=40, losses=10)
    with pytest.raises(LabelingError, match="beta"):
        services.round_launch(
            project=project, config={"policy": {"beta": -1}}, promote_pending=True
        )
    assert Checkpoint.objects.champion_of(project) == base
    pending.refresh_from_db()
    assert "promotion" not in pending.metrics and Round.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_the_launch_form_previews_and_promotes_first(pending: Checkpoint) -> None:
    project, base = pending.project, _base(pending.project)
    judged_pairs(pending, base, wins=40, losses=10)
    client = Client()
    client.force_login(UserFactory.create(username="boss", role="admin"))
    url = f"/projects/{project.pk}/rounds/"
    fresh = client.get(url, {"method": "dpo"}, headers={"HX-Request": "true"}).content.decode()
    assert (
        'name="promote_pending"' in fresh
        and "checked" in fresh.split('name="promote_pending"')[1][:80]
    )
    assert 'data-gate="passes"' in fresh and "Launching promotes it first" in fresh
    assert f"from checkpoint #{pending.pk}, promoted to champion first" in fresh
    # the box unticked: the preview says the round starts from the champion
    unticked = client.get(url, {"method": "dpo", "preview": "1"}).content.decode()
    assert "Not asked to promote it: this round starts from the champion" in unticked
    done = client.post(url, {"method": "dpo", "promote_pending": "on"}, follow=True)
    page = done.content.decode()
    assert f"launched from checkpoint #{pending.pk}. Round 1" in page
    assert "was promoted first" in page and 'data-testid="launch-decision"' in page
    assert Checkpoint.objects.champion_of(project) == pending


@pytest.mark.django_db
def test_the_api_and_the_command_promote_first_when_asked(pending: Checkpoint) -> None:
    project, base = pending.project, _base(pending.project)
    judged_pairs(pending, base, wins=103, losses=88)
    api = token_client(UserFactory.create(username="boss-api", role="admin"))
    body = api.post(
        f"/api/v1/projects/{project.pk}/rounds/", {"promote_pending": True}, format="json"
    )
    assert body.status_code == 201, body.content
    assert body.json()["parent_checkpoint"] == base.pk
    assert body.json()["launch_decision"]["promoted"] is False
    Round.objects.filter(number=2).update(status=RoundStatus.CANCELLED)
    judged_pairs(pending, base, wins=60, losses=5)  # now clearly better
    out = io.StringIO()
    call_command("launch_round", str(project.pk), "--promote-pending", stdout=out)
    text = out.getvalue()
    assert f"round 1's candidate #{pending.pk} was promoted first: humans preferred" in text
    assert f"from checkpoint #{pending.pk}" in text
    assert Checkpoint.objects.champion_of(project) == pending


@pytest.mark.django_db
def test_a_forced_decision_says_so(pending: Checkpoint) -> None:
    judged_pairs(pending, _base(pending.project), wins=103, losses=88)
    decision = services.pending_candidate_promote(project=pending.project, force=True)
    assert decision is not None and decision["promoted"] is True and decision["forced"] is True
    assert "includes 50%" in decision["reason"]
    assert services.pending_candidate_promote(project=pending.project) is None  # decided
