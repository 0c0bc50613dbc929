"""Shared fixtures: users in their roles, a project with a filled queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labeling.models import Project
from labeling.roles import ADMIN_GROUP
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory


@pytest.fixture
def admin_user(db: Any) -> Any:
    return UserFactory.create(username="admin", role=ADMIN_GROUP)


@pytest.fixture
def annotator(db: Any) -> Any:
    return UserFactory.create(username="ann1")


@pytest.fixture
def other_annotator(db: Any) -> Any:
    return UserFactory.create(username="ann2")


@pytest.fixture
def project(db: Any, annotator: Any, other_annotator: Any) -> Project:
    project = ProjectFactory.create()
    project.annotators.add(annotator, other_annotator)
    return project


@pytest.fixture
def queue(project: Project) -> list[Any]:
    """Five open comparisons in the project, in queue order."""
    return [ComparisonFactory.create(project=project) for _ in range(5)]


CHROMIUM = "/usr/bin/chromium"  # Debian's (make chromium); never a downloaded Playwright build
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the browser tests (one per test module)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
