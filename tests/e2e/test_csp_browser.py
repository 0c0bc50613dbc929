"""Every page an admin and an annotator open, in a real browser under the Content-Security-Policy:
none may trip it (the shared ``browser`` fixture fails the test on any violation), and each page's
htmx still loads (no script error)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from labeling.roles import ADMIN_GROUP
from labeling.services import user_create
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)  # the redirect has landed
    page.wait_for_load_state("networkidle")


def test_every_page_passes_the_policy(browser: Any, live_server: Any) -> None:
    user_create(username="boss", role=ADMIN_GROUP, password="pw")  # with the admin permissions
    annotator = UserFactory.create(username="ann1")
    project: Any = ProjectFactory.create(name="CSP")
    project.annotators.add(annotator)
    for _ in range(3):
        ComparisonFactory.create(project=project)
    pk = project.pk
    admin_pages = [
        "/projects/",
        f"/projects/{pk}/",
        f"/projects/{pk}/label/",
        f"/projects/{pk}/upload/",
        f"/projects/{pk}/export/",
        f"/projects/{pk}/rounds/",
        f"/projects/{pk}/checkpoints/",
        f"/projects/{pk}/gold/",
        "/tokens/",
        "/api/v1/docs/",
        "/admin/",
        "/admin/authtoken/tokenproxy/add/",
        "/admin/labeling/project/",
        "/no-such-page/",
    ]
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda error: errors.append(str(error)))
    _log_in(page, live_server.url, "boss")
    for path in admin_pages:
        response = page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert response.status == (404 if path == "/no-such-page/" else 200), path
    page.close()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda error: errors.append(str(error)))
    _log_in(page, live_server.url, "ann1")
    for path in [f"/projects/{pk}/label/", f"/projects/{pk}/history/", "/tokens/"]:
        response = page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert response.status == (403 if path == "/tokens/" else 200), path
    page.close()
    assert errors == []
