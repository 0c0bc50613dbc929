"""API fixtures: token-authenticated clients for the shared users."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(annotator: Any) -> APIClient:
    """The first annotator's client."""
    return token_client(annotator)


@pytest.fixture
def other_api(other_annotator: Any) -> APIClient:
    return token_client(other_annotator)


@pytest.fixture
def admin_api(admin_user: Any) -> APIClient:
    return token_client(admin_user)
