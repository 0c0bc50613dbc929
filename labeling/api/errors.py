"""One JSON error shape for the whole API: ``{"error": reason, "field": name|null, "detail": …}``.

A rule refused (``LabelingError``) answers its own 4xx; SQLite's "database is locked" (a writer
waited past the database timeout, e.g. behind a long import) answers 503 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from django.db import OperationalError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from labeling.services import LabelingError

# Keys DRF uses for messages that are not about one input field.
_NOT_FIELDS = ("non_field_errors", "detail")

# SQLite's writers wait at most the database timeout (config/sqlite_backend): then this.
_BUSY = "database is locked"
BUSY_RETRY_AFTER_S = 5


def _first_message(detail: Any) -> tuple[str | None, str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            field, message = _first_message(value)
            return (key if key not in _NOT_FIELDS else field), message
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return None, str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, LabelingError):
        return Response(
            {"error": exc.message, "field": exc.field, "detail": None}, status=exc.status
        )
    if isinstance(exc, OperationalError) and _BUSY in str(exc):
        return Response(
            {
                "error": "the database is busy with another write (e.g. a long import): "
                "try again in a few seconds (a repeated submit is never counted twice)",
                "field": None,
                "detail": str(exc),
            },
            status=503,
            headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    field, message = _first_message(response.data)
    if field is not None and not message.lower().startswith(field.lower()):
        message = f"{field}: {message}"
    response.data = {"error": message, "field": field, "detail": response.data}
    if isinstance(exc, exceptions.NotAuthenticated):
        response.data["error"] = "authentication required: send 'Authorization: Token <key>'"
    return response
