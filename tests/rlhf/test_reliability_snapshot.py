"""A round's snapshot can weigh votes by annotator reliability and drop unreliable annotators
(``snapshot.annotator_weights`` / ``snapshot.drop_below``): validated at launch (400 naming the
field, nothing written), stored in the round's config and its frozen export parameters, shown
on the round page, counted by the launch form's preview, and the export of the snapshot holds
exactly the rows it trains on. Data: the planted annotators of ``tests.labeling.planted``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Judgment, Project
from rlhf import selectors
from rlhf.methods import ConfigError, resolve_config
from rlhf.models import Round
from tests.factories import UserFactory
from tests.labeling.planted import PLANTED, planted_project

RELIABLE = {"rounds": "all", "annotator_weights": "dawid_skene", "drop_below": 0.5}
STRICT = {**RELIABLE, "drop_below": 0.99}  # nobody scores that high: every vote dropped


@pytest.mark.parametrize(
    ("snapshot", "field"),
    [
        ({"annotator_weights": "glad"}, "snapshot.annotator_weights"),
        ({"annotator_weights": "mace", "drop_below": 1.5}, "snapshot.drop_below"),
        ({"drop_below": 0.3}, "snapshot.drop_below"),  # nothing to compare with
        ({"annotator_weights": "mace", "drop_below": "0.3"}, "snapshot.drop_below"),
    ],
)
def test_bad_snapshot_reliability_options_are_refused(snapshot: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        resolve_config("dpo", {"snapshot": snapshot})
    assert error.value.field == field


def test_the_defaults_weigh_nobody() -> None:
    snapshot = resolve_config("dpo")["snapshot"]
    assert (snapshot["annotator_weights"], snapshot["drop_below"]) == ("none", 0.0)


@pytest.fixture
def project(db: Any) -> Project:
    return planted_project()


@pytest.fixture
def admin() -> Any:
    return UserFactory.create(username="boss", role="admin")


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _by_prompt(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["prompt"][0]["content"], []).append(row)
    return found


def test_a_snapshot_with_drop_leaves_the_planted_votes_out(project: Project) -> None:
    ids = selectors.snapshot_judgment_ids(project, {"rounds": "all"})
    plain = _by_prompt(selectors.preference_rows(ids, {}))
    dropped = _by_prompt(selectors.preference_rows(ids, RELIABLE))
    # the planted pair outvoted good0 on "outvoted"; alone on "lonely"
    assert [row["chosen"] for row in plain["outvoted"]] == ["B for outvoted"]
    assert [row["chosen"] for row in dropped["outvoted"]] == ["A for outvoted"]
    assert "lonely" in plain and "lonely" not in dropped
    # the same as the snapshot of the consistent annotators' judgments alone, weighted alike
    weights = {**RELIABLE, "drop_below": 0.0}
    kept_ids = sorted(
        Judgment.objects.filter(pk__in=ids)
        .exclude(annotator__username__in=PLANTED)
        .values_list("pk", flat=True)
    )
    assert [
        (row["prompt"], row["chosen"], row["rejected"])
        for row in selectors.preference_rows(kept_ids, weights)
    ] == [
        (row["prompt"], row["chosen"], row["rejected"]) for rows in dropped.values() for row in rows
    ]
    kto = _by_prompt(selectors.kto_rows(ids, RELIABLE))
    assert "lonely" not in kto
    assert {(row["completion"], row["label"]) for row in kto["outvoted"]} == {
        ("A for outvoted", True),
        ("B for outvoted", False),
    }


def test_launch_stores_shows_and_exports_the_reliability_snapshot(
    project: Project, admin: Any, settings: Any
) -> None:
    settings.PAIRWISE_MIN_SNAPSHOT = 10
    api = _api(admin)
    url = f"/api/v1/projects/{project.pk}/rounds/"
    bad = {"snapshot": {"annotator_weights": "majority"}}
    refused = api.post(url, {"method": "dpo", "config": bad}, format="json")
    assert refused.status_code == 400
    assert refused.json()["field"] == "snapshot.annotator_weights"
    assert Round.objects.count() == 0

    preview = selectors.snapshot_preview(project, "dpo", {"snapshot": RELIABLE})
    assert preview == len(
        selectors.preference_rows(selectors.snapshot_judgment_ids(project, RELIABLE), RELIABLE)
    )
    assert selectors.snapshot_preview(project, "dpo", {"snapshot": STRICT}) == 0

    launched = api.post(url, {"method": "dpo", "config": {"snapshot": RELIABLE}}, format="json")
    assert launched.status_code == 201, launched.content
    round_ = Round.objects.get()
    assert round_.config["snapshot"]["annotator_weights"] == "dawid_skene"
    assert round_.config["snapshot"]["drop_below"] == 0.5
    assert round_.snapshot_size == preview
    assert round_.snapshot_export["annotator_weights"] == "dawid_skene"
    assert round_.snapshot_export["drop_below"] == "0.5"

    trained = selectors.training_rows(
        "dpo", round_.snapshot_judgment_ids, round_.config["snapshot"]
    )
    response = api.get(selectors.round_export_url(round_))
    assert response.status_code == 200
    exported = [
        json.loads(line)
        for line in b"".join(response.streaming_content).splitlines()  # type: ignore[attr-defined]
    ]
    assert exported == [
        {
            "prompt": row["prompt"],
            "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}],
            "margin": row["margin"],
            "weight": row["weight"],
        }
        for row in trained
    ]
    assert selectors.snapshot_hash(trained) == round_.snapshot_hash

    page = Client()
    page.force_login(admin)
    html = page.get(f"/rounds/{round_.pk}/").content.decode()
    assert "annotator weights <b>dawid_skene</b>, votes of annotators under 0.5 dropped" in html


def test_launch_form_preview_counts_the_reliability_snapshot(
    project: Project, admin: Any, settings: Any
) -> None:
    settings.PAIRWISE_MIN_SNAPSHOT = 1000  # refused: the form comes back with its preview
    page = Client()
    page.force_login(admin)
    url = f"/projects/{project.pk}/rounds/"
    counts = {}
    for name, snapshot in (("plain", {"rounds": "all"}), ("strict", STRICT)):
        response = page.post(url, {"method": "dpo", "config": json.dumps({"snapshot": snapshot})})
        assert response.status_code == 422
        counts[name] = selectors.snapshot_preview(project, "dpo", {"snapshot": snapshot})
        assert f"It trains on <b>{counts[name]}</b>" in response.content.decode()
    assert counts["strict"] == 0 < (counts["plain"] or 0)
    assert Round.objects.count() == 0
