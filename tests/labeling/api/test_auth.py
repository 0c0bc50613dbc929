"""Authentication: token or session; missing or wrong credentials answer 401 in the JSON shape."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient


def test_no_token_is_401_json(db: Any) -> None:
    response = APIClient().get("/api/v1/projects/")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert "Authorization: Token" in body["error"] and body["field"] is None
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_401(db: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    response = client.post("/api/v1/projects/1/queue/next/")
    assert response.status_code == 401
    assert response.json()["error"].lower().startswith("invalid token")


def test_session_auth_works(annotator: Any, project: Any) -> None:
    client = APIClient()
    client.force_login(annotator)
    response = client.get("/api/v1/projects/")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [project.pk]
