"""GET /projects/{id}/stats/: the figures of a known fixture, for admins only."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from tests.labeling.api.conftest import token_client
from tests.labeling.test_selectors import build_stats_fixture


def test_stats_figures(admin_api: APIClient, django_assert_max_num_queries: Any) -> None:
    fixture = build_stats_fixture()
    with django_assert_max_num_queries(9):
        response = admin_api.get(f"/api/v1/projects/{fixture.project.pk}/stats/")
    assert response.status_code == 200
    body = response.json()
    assert body["progress"] == {
        "comparisons_total": 5,
        "comparisons_open": 2,
        "comparisons_complete": 2,
        "comparisons_closed": 1,
        "live_leases": 1,
        "judgments_total": 9,
        "judgments_today": 8,
    }
    assert body["agreement"]["pairwise_agreement"] == 0.7143
    assert body["agreement"]["position_bias_left"] == 0.8571
    assert body["annotators"][0] == {
        "annotator_id": fixture.users["u1"].pk,
        "username": "u1",
        "judgments": 4,
        "median_time_spent_ms": 2000.0,
        "agreement_with_majority": 1.0,
        "majority_comparisons": 2,
        "tie_rate": 0.25,
    }
    assert [a["agreement_with_majority"] for a in body["annotators"]] == [1.0, 1.0, 0.5]


def test_stats_refused_to_annotators(db: Any) -> None:
    fixture = build_stats_fixture()
    member = token_client(fixture.users["u1"])
    response = member.get(f"/api/v1/projects/{fixture.project.pk}/stats/")
    assert response.status_code == 403
    assert response.json()["error"] == "only admins may read a project's figures"


def test_stats_of_foreign_project_is_404_for_annotators(api: APIClient) -> None:
    fixture = build_stats_fixture()
    assert api.get(f"/api/v1/projects/{fixture.project.pk}/stats/").status_code == 404
