"""An invite link under real concurrency, on PostgreSQL: of many simultaneous uses exactly one
creates a user and joins the project; the others get 409 and leave nothing behind."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from labeling import services
from labeling.models import ProjectInvite
from tests.factories import ProjectFactory, UserFactory
from tests.labeling.test_concurrency_pg import run_threads

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: set DATABASE_URL=postgres://…",
    ),
]


def test_an_invite_is_used_once_whatever_the_race() -> None:
    admin: Any = UserFactory.create(username="boss", role="admin")
    project: Any = ProjectFactory.create()
    _, token = services.invite_create(project=project, role="reviewer", created_by=admin)
    outcomes: list[str] = []

    def accept(index: int) -> None:
        try:
            services.invite_accept(token=token, username=f"new{index}", password="c0rrect-horse")
        except services.Conflict:
            outcomes.append("refused")
        else:
            outcomes.append("joined")

    assert run_threads(8, accept) == []
    assert sorted(outcomes) == ["joined"] + ["refused"] * 7
    [user] = get_user_model().objects.filter(username__startswith="new")
    assert list(project.reviewers.all()) == [user]
    assert ProjectInvite.objects.get().used_by == user
