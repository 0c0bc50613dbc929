"""API tokens: admins create a user's token on the Tokens page or the API (the key is shown once),
list them without keys, revoke them; annotators reach neither. Admins also hold the Django-admin
permissions the README promises (tokens are managed there too)."""

from __future__ import annotations

from typing import Any

from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.services import user_create
from labeling.tokens import KEY_PREFIX_CHARS
from tests.labeling.api.conftest import token_client

HTMX = {"HX-Request": "true"}


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_annotators_and_strangers_cannot_reach_tokens(annotator: Any, admin_user: Any) -> None:
    assert Client().get("/tokens/").status_code == 302  # to the login page
    client = _logged_in(annotator)
    assert client.get("/tokens/").status_code == 403
    assert client.post("/tokens/", {"user": annotator.pk}).status_code == 403
    Token.objects.create(user=admin_user)
    assert client.post(f"/tokens/{admin_user.pk}/revoke/").status_code == 403
    assert Token.objects.filter(user=admin_user).exists()
    assert not Token.objects.filter(user=annotator).exists()
    api = token_client(annotator)
    assert api.get("/api/v1/tokens/").status_code == 403
    assert api.post("/api/v1/tokens/", {"user": annotator.pk}).status_code == 403
    assert api.delete(f"/api/v1/tokens/{admin_user.pk}/").status_code == 403
    assert Token.objects.count() == 2


def test_admin_creates_a_token_shown_once(admin_user: Any, annotator: Any) -> None:
    client = _logged_in(admin_user)
    page = client.get("/tokens/").content.decode()
    assert f'<option value="{annotator.pk}">ann1</option>' in page
    response = client.post("/tokens/", {"user": annotator.pk}, headers=HTMX)
    assert response.status_code == 201
    key = Token.objects.get(user=annotator).key
    body = response.content.decode()
    assert key in body and 'id="token-panel"' in body and "<html" not in body  # the partial
    assert response["Cache-Control"] == "no-store"
    # afterwards only the first characters are ever shown
    again = client.get("/tokens/").content.decode()
    assert key not in again and f"{key[:KEY_PREFIX_CHARS]}…" in again
    # the key works
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/projects/").status_code == 200


def test_a_second_token_is_refused_and_bad_users_named(admin_user: Any, annotator: Any) -> None:
    client = _logged_in(admin_user)
    Token.objects.create(user=annotator)
    response = client.post("/tokens/", {"user": annotator.pk}, headers=HTMX)
    assert response.status_code == 409 and "already has a token" in response.content.decode()
    assert client.post("/tokens/", {"user": "x"}, headers=HTMX).status_code == 422
    assert client.post("/tokens/", {"user": 99999}, headers=HTMX).status_code == 404
    assert Token.objects.count() == 1


def test_revoke_stops_the_key_at_once(admin_user: Any, annotator: Any) -> None:
    key = Token.objects.create(user=annotator).key
    client = _logged_in(admin_user)
    response = client.post(f"/tokens/{annotator.pk}/revoke/")  # no JavaScript: the whole page
    assert response.status_code == 200 and "Token of ann1 revoked" in response.content.decode()
    assert "<html" in response.content.decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/projects/").status_code == 401
    assert client.post(f"/tokens/{annotator.pk}/revoke/").status_code == 404


def test_token_api(admin_user: Any, annotator: Any) -> None:
    admin = token_client(admin_user)
    created = admin.post("/api/v1/tokens/", {"user": annotator.pk}, format="json")
    assert created.status_code == 201
    key = created.json()["key"]
    assert created.json()["username"] == "ann1" and Token.objects.get(user=annotator).key == key
    listed = admin.get("/api/v1/tokens/").json()
    assert {row["username"] for row in listed} == {"admin", "ann1"}
    assert all(len(row["key_prefix"]) == KEY_PREFIX_CHARS for row in listed)
    assert key not in admin.get("/api/v1/tokens/").content.decode()
    again = admin.post("/api/v1/tokens/", {"user": annotator.pk}, format="json")
    assert again.status_code == 409 and again.json()["field"] == "user"
    assert admin.post("/api/v1/tokens/", {}, format="json").status_code == 400
    assert admin.delete(f"/api/v1/tokens/{annotator.pk}/").status_code == 204
    assert admin.delete(f"/api/v1/tokens/{annotator.pk}/").status_code == 404
    assert not Token.objects.filter(user=annotator).exists()


def test_admins_can_manage_tokens_in_the_django_admin(db: Any) -> None:
    boss, _ = user_create(username="boss", role="admin", password="pw-boss-1")
    ann, _ = user_create(username="ann", role="annotator", password="pw-ann-1")
    assert boss.has_perm("authtoken.add_token") and boss.has_perm("labeling.change_project")
    assert boss.has_perm("rlhf.view_round") and boss.has_perm("auth.view_user")
    assert not boss.has_perm("auth.change_user")  # could grant superuser status
    assert not ann.has_perm("authtoken.add_token")
    client = _logged_in(boss)
    index = client.get("/admin/").content.decode()
    assert "permission to view or edit anything" not in index and "Tokens" in index
    assert client.get("/admin/authtoken/tokenproxy/add/").status_code == 200
    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": ann.pk})
    assert response.status_code == 302 and Token.objects.filter(user=ann).exists()
    assert _logged_in(ann).get("/admin/").status_code == 302  # not staff: the admin login
