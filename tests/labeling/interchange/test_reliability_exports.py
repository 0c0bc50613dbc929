"""Reliability-weighted exports (``annotator_weights``, ``drop_below``) on planted annotators
(``tests.labeling.planted``): off by default and then unchanged, weights that differ when on,
the planted votes dropped, the same rows as a snapshot of the same judgments, 400s."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.interchange.exports import export_stream
from labeling.interchange.specs import ExportStats, export_spec_parse
from labeling.models import Judgment, Project
from labeling.preferences import snapshot_rows
from tests.labeling.planted import CONSISTENT, LEFT, MAIN_COMPARISONS, PLANTED, RANDOM
from tests.labeling.planted import planted_project as planted_project_create

PAIRS = {"format": "trl_conversational", "margin": "1", "weight": "1"}


@pytest.fixture
def planted_project(db: Any) -> Project:
    return planted_project_create()


def export(project: Project, **params: str) -> tuple[list[dict[str, Any]], ExportStats]:
    spec = export_spec_parse({**PAIRS, **params})
    stats = ExportStats()
    body = b"".join(export_stream(project=project, spec=spec, stats=stats))
    return [json.loads(line) for line in body.decode().splitlines()], stats


def probe(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["prompt"][0]["content"] == name]


def test_off_by_default_and_then_unchanged(planted_project: Project) -> None:
    default, stats = export(planted_project)
    explicit, _ = export(planted_project, annotator_weights="none")
    assert explicit == default and not stats.reliability
    (outvoted,) = probe(default, "outvoted")  # plain majority: the two planted votes for b
    assert outvoted["chosen"][0]["content"] == "B for outvoted"
    assert outvoted["weight"] == 0.6667
    (lonely,) = probe(default, "lonely")
    assert lonely["weight"] == 1.0


@pytest.mark.parametrize("model", ["dawid_skene", "mace"])
def test_weights_follow_reliability(planted_project: Project, model: str) -> None:
    default, _ = export(planted_project)
    weighted, stats = export(planted_project, annotator_weights=model)
    reliability = stats.reliability
    assert set(reliability) == {*CONSISTENT, *PLANTED}
    assert set(sorted(reliability, key=reliability.__getitem__)[:2]) == {RANDOM, LEFT}
    assert [row["weight"] for row in weighted] != [row["weight"] for row in default]
    # by hand: good0's "a" against the planted "b" votes
    good, rand, left = reliability["good0"], reliability[RANDOM], reliability[LEFT]
    assert good > rand + left  # the planted pair no longer outvotes one consistent annotator
    (outvoted,) = probe(weighted, "outvoted")
    assert outvoted["chosen"][0]["content"] == "A for outvoted"
    assert outvoted["weight"] == round(good / (good + rand + left) * good, 4)
    assert outvoted["margin"] == round(2 / 3, 4)
    (lonely,) = probe(weighted, "lonely")
    assert lonely["weight"] == reliability[RANDOM] < 0.5
    card = export_card(planted_project, annotator_weights=model)
    assert f"Annotator weights: `{model}`" in card and f"- {RANDOM}: {rand}" in card


def export_card(project: Project, **params: str) -> str:
    from labeling.interchange.cards import dataset_card_render

    spec = export_spec_parse({**PAIRS, **params})
    stats = ExportStats()
    b"".join(export_stream(project=project, spec=spec, stats=stats))
    return dataset_card_render(project=project, spec=spec, stats=stats)


def test_drop_below_removes_the_planted_votes(planted_project: Project) -> None:
    rows, stats = export(planted_project, annotator_weights="dawid_skene", drop_below="0.5")
    good = stats.reliability["good0"]
    assert all(stats.reliability[name] < 0.5 for name in PLANTED)
    assert all(stats.reliability[name] >= 0.5 for name in CONSISTENT)
    assert stats.votes_dropped_unreliable == 2 * MAIN_COMPARISONS + 2 + 1
    (outvoted,) = probe(rows, "outvoted")  # good0 alone decides it now
    assert outvoted["chosen"][0]["content"] == "A for outvoted"
    assert outvoted["weight"] == good
    assert probe(rows, "lonely") == []
    # the rows of the consistent annotators' votes alone, weighted as before
    per_vote, _ = export(
        planted_project, annotator_weights="dawid_skene", drop_below="0.5", aggregation="all"
    )
    (single,) = probe(per_vote, "outvoted")
    assert single["weight"] == good  # one kept vote: reliability / 1
    assert (
        len(per_vote)
        == Judgment.objects.filter(
            annotator__username__in=CONSISTENT, choice__in=["a", "b"]
        ).count()
    )


def test_an_export_and_a_snapshot_of_the_same_judgments_hold_the_same_rows(
    planted_project: Project,
) -> None:
    ids = list(
        Judgment.objects.filter(comparison__project=planted_project).values_list("pk", flat=True)
    )
    for model, drop in (("dawid_skene", 0.5), ("mace", 0.0), ("mace", 0.6)):
        params = {"annotator_weights": model, **({"drop_below": str(drop)} if drop else {})}
        exported, _ = export(planted_project, **params)
        snapshot = snapshot_rows(ids, annotator_weights=model, drop_below=drop)
        assert exported == [
            {
                "prompt": row["prompt"],
                "chosen": [{"role": "assistant", "content": row["chosen"]}],
                "rejected": [{"role": "assistant", "content": row["rejected"]}],
                "margin": row["margin"],
                "weight": row["weight"],
            }
            for row in snapshot
        ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("annotator_weights=glad", "annotator_weights"),
        ("drop_below=0.3", "drop_below"),
        ("annotator_weights=mace&drop_below=1.5", "drop_below"),
        ("annotator_weights=mace&format=raw", "annotator_weights"),
    ],
)
def test_bad_reliability_parameters_are_400(
    planted_project: Project, admin_user: Any, query: str, field: str
) -> None:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    response = api.get(f"/api/v1/projects/{planted_project.pk}/export/?{query}")
    assert response.status_code == 400
    assert response.json()["field"] == field
    if field == "annotator_weights" and "raw" not in query:
        assert "allowed: none, dawid_skene, mace" in response.json()["error"]
