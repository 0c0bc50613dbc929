"""The tuning side's JSON inputs (the launch form's config, ``launch_round --config``) refuse deep
nesting and NUL characters with a 400 / command error naming them, on both databases; no round
is created."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from labeling.models import Project
from labeling.safeinput import MAX_JSON_DEPTH
from rlhf.models import Round

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def admin_client(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DEEP, f"is nested more than {MAX_JSON_DEPTH} levels deep"),
        ('{"policy": {"beta": "\\u0000"}}', "policy.beta: contains a NUL character"),
    ],
)
def test_launch_form_refuses_deep_or_nul_config(
    admin_client: Client, project: Project, config: str, message: str
) -> None:
    response = admin_client.post(
        f"/projects/{project.pk}/rounds/", {"method": "dpo", "config": config}
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Round.objects.exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DEEP, "--config is nested more than"),
        ('{"seed\\u0000": 1}', "--config seed"),
    ],
)
def test_launch_round_command_refuses_deep_or_nul_config(
    project: Project, config: str, message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("launch_round", str(project.pk), "--config", config)
    assert not Round.objects.exists()


def test_launch_round_command_with_an_id_past_int64(project: Project) -> None:
    with pytest.raises(CommandError, match="no project"):
        call_command("launch_round", str(2**63))
