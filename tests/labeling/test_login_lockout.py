"""Login lockout (django-axes): after 5 wrong passwords a username is locked out from that IP for
15 minutes, at the login page and the Django admin alike, even with the right password; the
lockout expires, and ``axes_reset_username`` lifts it sooner."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tests.factories import UserFactory

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def _post(client: Client, url: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post(url, {"username": "ann1", "password": password}, REMOTE_ADDR=ip)


def _fail_five_times(client: Client, url: str = LOGIN) -> None:
    for attempt in range(5):
        response = _post(client, url, f"wrong{attempt}")
        assert response.status_code in (200, 429)


def test_defaults_are_five_failures_and_fifteen_minutes() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_sixth_try_is_refused_even_with_the_right_password(annotator: Any) -> None:
    client = Client()
    for attempt in range(4):
        response = _post(client, LOGIN, f"wrong{attempt}")
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    # the fifth failure locks
    response = _post(client, LOGIN, "wrong5")
    assert response.status_code == 429
    response = _post(client, LOGIN, "pw")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    page = response.content.decode()
    assert "Too many failed log-ins" in page and "try again in\n      15 minutes" in page
    assert "axes_reset_username ann1" in page


def test_the_right_password_resets_the_count_before_the_limit(annotator: Any) -> None:
    client = Client()
    for attempt in range(4):
        _post(client, LOGIN, f"wrong{attempt}")
    assert _post(client, LOGIN, "pw").status_code == 302
    client.logout()
    for attempt in range(4):
        _post(client, LOGIN, f"wrong{attempt}")
    assert _post(client, LOGIN, "pw").status_code == 302


def test_lockout_is_per_username_and_ip(annotator: Any, other_annotator: Any) -> None:
    _fail_five_times(Client())
    assert _post(Client(), LOGIN, "pw").status_code == 429
    # the same user from another address, another user from the same address: not locked
    assert _post(Client(), LOGIN, "pw", ip="10.0.0.2").status_code == 302
    response = Client().post(LOGIN, {"username": "ann2", "password": "pw"}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 302


def test_the_django_admin_login_locks_out_too(db: Any) -> None:
    UserFactory.create(username="ann1", role="admin")
    _fail_five_times(Client(), ADMIN_LOGIN)
    response = _post(Client(), ADMIN_LOGIN, "pw")
    assert response.status_code == 429
    # and the lock holds on the page login as well (same username and address)
    assert _post(Client(), LOGIN, "pw").status_code == 429


def test_lockout_expires_after_the_cool_off(annotator: Any) -> None:
    _fail_five_times(Client())
    assert _post(Client(), LOGIN, "pw").status_code == 429
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    assert _post(Client(), LOGIN, "pw").status_code == 302


@pytest.mark.parametrize(
    "command", [["axes_reset_username", "ann1"], ["axes_reset_ip", "10.0.0.1"], ["axes_reset"]]
)
def test_reset_commands_lift_the_lockout(annotator: Any, command: list[str]) -> None:
    _fail_five_times(Client())
    assert _post(Client(), LOGIN, "pw").status_code == 429
    call_command(*command)
    assert _post(Client(), LOGIN, "pw").status_code == 302


def test_behind_a_proxy_each_client_address_counts_alone(settings: Any, annotator: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}  # PAIRWISE_PROXY_COUNT
    proxy = "10.0.0.254"
    client = Client()
    for attempt in range(5):
        client.post(
            LOGIN,
            {"username": "ann1", "password": f"wrong{attempt}"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR="203.0.113.7",
        )
    locked = Client().post(
        LOGIN,
        {"username": "ann1", "password": "pw"},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    assert locked.status_code == 429
    other = Client().post(
        LOGIN,
        {"username": "ann1", "password": "pw"},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )
    assert other.status_code == 302


def test_a_forged_forwarded_for_changes_nothing_without_proxies(annotator: Any) -> None:
    for attempt in range(5):
        Client().post(
            LOGIN,
            {"username": "ann1", "password": f"wrong{attempt}"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}",
        )
    forged = Client().post(
        LOGIN,
        {"username": "ann1", "password": "pw"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.99",
    )
    assert forged.status_code == 429
