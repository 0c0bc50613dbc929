"""A project's queue order (fifo | uncertainty): set at creation, switched by admins with PATCH."""

from __future__ import annotations

from rest_framework.test import APIClient

from labeling.models import Comparison, Project, QueueOrder
from tests.factories import ComparisonFactory


def test_new_projects_are_fifo_and_may_start_ordered_by_uncertainty(admin_api: APIClient) -> None:
    fifo = admin_api.post("/api/v1/projects/", {"name": "plain"}, format="json")
    assert fifo.status_code == 201 and fifo.json()["queue_order"] == "fifo"
    active = admin_api.post(
        "/api/v1/projects/", {"name": "active", "queue_order": "uncertainty"}, format="json"
    )
    assert active.status_code == 201, active.json()
    assert Project.objects.get(pk=active.json()["id"]).queue_order == QueueOrder.UNCERTAINTY


def test_admin_switches_the_queue_order_and_priorities_stay(
    admin_api: APIClient, project: Project
) -> None:
    comparison = ComparisonFactory.create(project=project, priority=7)
    url = f"/api/v1/projects/{project.pk}/"
    switched = admin_api.patch(url, {"queue_order": "uncertainty"}, format="json")
    assert switched.status_code == 200 and switched.json()["queue_order"] == "uncertainty"
    assert admin_api.get(url).json()["queue_order"] == "uncertainty"
    back = admin_api.patch(url, {"queue_order": "fifo"}, format="json")
    assert back.status_code == 200 and back.json()["queue_order"] == "fifo"
    assert Comparison.objects.get(pk=comparison.pk).priority == 7  # the switch reorders nothing


def test_bad_queue_order_is_400_naming_the_field_and_changes_nothing(
    admin_api: APIClient, api: APIClient, project: Project
) -> None:
    url = f"/api/v1/projects/{project.pk}/"
    bad = admin_api.patch(url, {"queue_order": "newest"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "queue_order"
    missing = admin_api.patch(url, {}, format="json")
    assert missing.status_code == 400
    assert "name a setting to change: gold_rate, queue_order" in str(missing.json())
    created = admin_api.post(
        "/api/v1/projects/", {"name": "odd", "queue_order": "lifo"}, format="json"
    )
    assert created.status_code == 400 and created.json()["field"] == "queue_order"
    assert not Project.objects.filter(name="odd").exists()
    assert api.patch(url, {"queue_order": "uncertainty"}, format="json").status_code == 403
    assert (
        admin_api.patch(
            "/api/v1/projects/99999/", {"queue_order": "fifo"}, format="json"
        ).status_code
        == 404
    )
    project.refresh_from_db()
    assert project.queue_order == QueueOrder.FIFO


def test_one_patch_changes_both_settings_or_neither(admin_api: APIClient, project: Project) -> None:
    url = f"/api/v1/projects/{project.pk}/"
    both = admin_api.patch(url, {"queue_order": "uncertainty", "gold_rate": 0.2}, format="json")
    assert both.status_code == 200
    assert (both.json()["queue_order"], both.json()["gold_rate"]) == ("uncertainty", 0.2)
    bad = admin_api.patch(url, {"queue_order": "fifo", "gold_rate": 0.9}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "gold_rate"
    project.refresh_from_db()
    assert (project.queue_order, project.gold_rate) == ("uncertainty", 0.2)
