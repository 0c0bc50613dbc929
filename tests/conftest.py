"""Shared fixtures: users in their roles, a project with a filled queue."""

from __future__ import annotations

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
