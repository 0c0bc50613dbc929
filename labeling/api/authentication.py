"""Token authentication for the API: DRF's, with the token and its user read in one query.

Every API call authenticates, so this sits on the hot path: the ORM's ``select_related`` query
cost more to compile than to run. Same rules as ``rest_framework.authentication``
``.TokenAuthentication`` (unknown key or inactive user: 401), same ``(user, token)`` result.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from labeling.api.throttles import TokenFailureThrottle
from labeling.safeinput import text_problem
from labeling.sqlrows import RowReader


@functools.cache
def _readers() -> tuple[RowReader, RowReader, str]:
    token, user = RowReader(Token, "t"), RowReader(get_user_model(), "u")
    sql = (
        f"SELECT {token.columns}, {user.columns} FROM {Token._meta.db_table} t "
        f"JOIN {get_user_model()._meta.db_table} u ON u.id = t.user_id WHERE t.key = %s"
    )
    return token, user, sql


class TokenAuthentication(authentication.TokenAuthentication):
    """Also throttles guessing: invalid keys are counted per client IP (``TokenFailureThrottle``,
    rate ``auth``); past the rate any key from that IP answers 429 until the window has room."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        throttle = TokenFailureThrottle()
        header = authentication.get_authorization_header(request).split()
        if header and header[0].lower() == self.keyword.lower().encode():
            throttle.check(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        if text_problem(key):  # a NUL would reach PostgreSQL as a 500
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token_reader, user_reader, sql = _readers()
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = token_reader.read(row, 0)
        user = user_reader.read(row, len(token_reader))
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token
