"""API throttles: invalid tokens per client IP, judgments and exports per user; a throttled call
answers 429 with ``Retry-After`` and the JSON error shape. On by default: the default export rate
is hit below without changing any setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Project
from tests.factories import UserFactory
from tests.labeling.api.conftest import token_client

REPO = Path(__file__).resolve().parents[3]


def _rates(settings: Any, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def _assert_throttled(response: Any) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) >= 1
    body = response.json()
    assert "throttled" in body["error"].lower() or "too many" in body["error"].lower()


def test_export_throttle_is_on_by_default(admin_api: APIClient, project: Project) -> None:
    url = f"/api/v1/projects/{project.pk}/export/?format=trl&container=jsonl"
    for _ in range(30):  # the default: 30 a minute per user
        response = admin_api.get(url)
        assert response.status_code == 200
        response.getvalue()
    _assert_throttled(admin_api.get(url))
    # another admin still exports
    other = token_client(UserFactory.create(username="boss2", role="admin"))
    assert other.get(url).status_code == 200


def test_submit_throttle_per_user(
    settings: Any, queue: list[Any], api: APIClient, other_api: APIClient
) -> None:
    _rates(settings, submit="3/minute")
    url = f"/api/v1/comparisons/{queue[0].pk}/judgments/"
    for _ in range(3):
        assert api.post(url, {"choice": "nonsense"}, format="json").status_code in (400, 404, 409)
    _assert_throttled(api.post(url, {"choice": "a", "strength": 2}, format="json"))
    # the queue itself is not throttled, nor is another annotator's submit
    assert api.post(f"/api/v1/projects/{queue[0].project_id}/queue/next/").status_code == 200
    assert other_api.post(url, {"choice": "nonsense"}, format="json").status_code == 400


def test_invalid_tokens_are_throttled_per_ip(settings: Any, annotator: Any, project: Any) -> None:
    _rates(settings, auth="3/minute")
    good = Token.objects.create(user=annotator).key
    attacker = APIClient(REMOTE_ADDR="10.9.9.9")
    for guess in range(3):
        attacker.credentials(HTTP_AUTHORIZATION=f"Token guess{guess}")
        assert attacker.get("/api/v1/projects/").status_code == 401
    attacker.credentials(HTTP_AUTHORIZATION="Token guess3")
    _assert_throttled(attacker.get("/api/v1/projects/"))
    # from that address even a right key waits, so a guess can't be told right from wrong
    attacker.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    _assert_throttled(attacker.get("/api/v1/projects/"))
    # the user from another address is not affected, and valid calls never count
    honest = APIClient(REMOTE_ADDR="10.1.1.1")
    honest.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    for _ in range(5):
        assert honest.get("/api/v1/projects/").status_code == 200


@pytest.mark.parametrize("scope", ["auth", "submit", "export"])
def test_rates_come_from_the_environment(scope: str, monkeypatch: Any) -> None:
    import importlib

    import config.settings

    monkeypatch.setenv(f"PAIRWISE_THROTTLE_{scope.upper()}", "7/hour")
    try:
        reloaded = importlib.reload(config.settings)
        assert reloaded.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope] == "7/hour"
    finally:
        monkeypatch.undo()
        importlib.reload(config.settings)


def test_proxy_count_comes_from_the_environment(monkeypatch: Any) -> None:
    import importlib

    import config.settings

    monkeypatch.setenv("PAIRWISE_PROXY_COUNT", "1")
    try:
        reloaded = importlib.reload(config.settings)
        assert reloaded.REST_FRAMEWORK["NUM_PROXIES"] == 1
        assert reloaded.AXES_CLIENT_IP_CALLABLE == "labeling.api.throttles.client_address"
    finally:
        monkeypatch.undo()
        importlib.reload(config.settings)


def test_behind_a_proxy_invalid_tokens_count_per_client(settings: Any, db: Any) -> None:
    _rates(settings, auth="2/minute")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    attacker = APIClient(REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR="203.0.113.7")
    attacker.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert [attacker.get("/api/v1/projects/").status_code for _ in range(3)] == [401, 401, 429]
    honest = APIClient(REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR="198.51.100.9")
    honest.credentials(HTTP_AUTHORIZATION="Token typo")
    assert honest.get("/api/v1/projects/").status_code == 401
    # a forwarded-for that is no address counts as the proxy's own
    forged = APIClient(REMOTE_ADDR="10.0.0.253", HTTP_X_FORWARDED_FOR="not-an-ip")
    forged.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert [forged.get("/api/v1/projects/").status_code for _ in range(3)] == [401, 401, 429]


def test_a_forged_forwarded_for_does_not_dodge_the_token_throttle(settings: Any, db: Any) -> None:
    _rates(settings, auth="2/minute")
    codes = []
    for guess in range(3):
        client = APIClient(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{guess}")
        client.credentials(HTTP_AUTHORIZATION=f"Token guess{guess}")
        codes.append(client.get("/api/v1/projects/").status_code)
    assert codes == [401, 401, 429]


_OTHER_WORKER = """
import django
django.setup()
from django.test import RequestFactory
from rest_framework.request import Request
from labeling.api.throttles import TokenFailureThrottle
request = Request(RequestFactory().get("/api/v1/projects/", REMOTE_ADDR="10.9.9.9"))
for _ in range(3):
    TokenFailureThrottle().record_failure(request)
"""


def test_every_web_process_counts_against_the_same_limit(
    settings: Any, tmp_path: Path, annotator: Any, project: Any
) -> None:
    """The production cache is on disk under the data dir: invalid tokens another process counted
    (a child process here, as a second gunicorn worker) throttle this one."""
    import config.settings as production

    cache = production.CACHES["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert cache["LOCATION"] == str(production.PAIRWISE_DATA_DIR / "cache")
    settings.CACHES = {"default": {**cache, "LOCATION": str(tmp_path / "cache")}}
    _rates(settings, auth="3/minute")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PAIRWISE_DATA_DIR": str(tmp_path),
        "PAIRWISE_HTTPS": "0",
    }
    env.pop("DATABASE_URL", None)
    worker = subprocess.run(
        [sys.executable, "-c", _OTHER_WORKER],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]
    attacker = APIClient(REMOTE_ADDR="10.9.9.9")
    attacker.credentials(HTTP_AUTHORIZATION="Token guess")
    _assert_throttled(attacker.get("/api/v1/projects/"))
    elsewhere = APIClient(REMOTE_ADDR="10.1.1.1")
    elsewhere.credentials(HTTP_AUTHORIZATION="Token guess")
    assert elsewhere.get("/api/v1/projects/").status_code == 401
