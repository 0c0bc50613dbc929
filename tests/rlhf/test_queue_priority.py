"""Queue order of the pairs rounds generate: the newest round's batch (what the next round trains
on) is served before older rounds' leftovers; ``uncertainty`` projects reorder by the reward model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from labeling.models import Assignment, Comparison, Project
from rlhf.methods import QUEUE_TIER
from rlhf.selectors import batch_priority, batch_round
from tests.factories import UserFactory
from tests.rlhf.test_api import token_client


def _round_through_api(client: APIClient, project: Project, capture: Any) -> int:
    with capture(execute=True):
        launched = client.post(
            f"/api/v1/projects/{project.pk}/rounds/",
            # every judged comparison counts (round 1's batch is still unjudged)
            {"method": "dpo", "config": {"snapshot": {"rounds": "all"}}},
            format="json",
        )
    assert launched.status_code == 201, launched.json()
    detail = client.get(f"/api/v1/rounds/{launched.json()['id']}/").json()
    assert detail["status"] == "succeeded"
    return int(detail["number"])


def _served_batches(client: APIClient, project: Project, count: int) -> list[str]:
    """The batches of the next ``count`` comparisons the queue serves (each one skipped)."""
    batches = []
    for _ in range(count):
        lease = client.post(f"/api/v1/projects/{project.pk}/queue/next/")
        assert lease.status_code == 200
        batches.append(Comparison.objects.get(pk=lease.json()["comparison"]).batch)
        skipped = client.post(f"/api/v1/projects/{project.pk}/queue/skip/")
        assert skipped.status_code == 200, skipped.content
    return batches


@pytest.mark.django_db
def test_after_round_2_generates_its_pairs_are_served_before_round_1_leftovers(
    judged_project: Project, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    admin = token_client(UserFactory.create(username="boss", role="admin"))
    assert _round_through_api(admin, judged_project, django_capture_on_commit_callbacks) == 1
    round_1 = Comparison.objects.filter(project=judged_project, batch__startswith="round-1:")
    assert round_1.open().count() == round_1.count() > 0  # round 1's batch is left unjudged
    assert _round_through_api(admin, judged_project, django_capture_on_commit_callbacks) == 2
    round_2 = Comparison.objects.filter(project=judged_project, batch__startswith="round-2:")
    assert round_2.count() > 0
    annotator = UserFactory.create(username="labeler")
    judged_project.annotators.add(annotator)
    served = _served_batches(token_client(annotator), judged_project, round_2.count() + 1)
    # round 2's batch first (its vs-champion pairs, then its on-policy ones), then round 1's
    expected = sorted(round_2.values_list("batch", flat=True), key=lambda b: b.endswith("policy"))
    assert served[:-1] == expected
    assert served[-1] == "round-1:vs-champion"
    assert not Assignment.objects.filter(annotator=annotator, status="active").exists()


def test_batch_priority_tiers_by_round() -> None:
    assert batch_round("round-3:on-policy") == 3 and batch_round("round-12") == 12
    assert batch_round("import") == 0 and batch_round("around-3:x") == 0
    assert batch_priority(2, 0) > batch_priority(1, QUEUE_TIER - 1) > batch_priority(0, 100)
