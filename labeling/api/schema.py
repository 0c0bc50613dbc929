"""The OpenAPI schema's error responses: every operation documents the 4xx it can answer, all in
the API's one error shape (``labeling.api.errors``), the ``Error`` component.

Which codes an operation gets: 400 (a malformed body or query, text that cannot be stored) for
all; 401 and 403 where it needs a caller; 404 where its path names a row; 409 (a rule of the
current state refused it) and 503 (SQLite busy with another write, ``Retry-After``) for writes,
415 (a body type it does not read) for those with a body; 429 (a rate limit, ``Retry-After``)
where it takes a token (invalid tokens are counted per client IP) or has a throttle of its own
(judgments, exports: ``labeling.api.throttles``). An operation's own ``extend_schema`` responses
win.

A serializer's ``Meta.optional_fields`` are not ``required`` in the schema: fields only some
callers receive (a project's annotators, shown to admins only).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    "400": "Bad input: the reason names the field (and the line or item of an import).",
    "401": "No or an invalid token: send 'Authorization: Token <key>'.",
    "403": "Authenticated, but not allowed (e.g. an annotator on an admin operation).",
    "404": "No such row, or one in a project you are not a member of.",
    "409": "Refused by the current state (e.g. no active lease, a round already running).",
    "415": "A request body type this operation does not read.",
    "429": "Too many requests (judgments or exports per user, invalid tokens per client IP): "
    "retry after Retry-After seconds.",
    "503": "The database is busy with another write: retry after Retry-After seconds.",
}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
BODY_WRITES = ("POST", "PUT", "PATCH")


class ErrorSerializer(serializers.Serializer[Any]):
    """Every error of the API."""

    error = serializers.CharField(help_text="The reason, in words.")
    field = serializers.CharField(
        allow_null=True, help_text="The input field it is about, or null."
    )
    detail = serializers.JSONField(
        allow_null=True, help_text="More: DRF's per-field messages, an import's row errors."
    )

    class Meta:
        ref_name = "Error"


class AutoSchema(openapi.AutoSchema):
    def error_codes(self) -> list[str]:
        codes = ["400"]
        if self.get_auth():
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.method in WRITES:
            codes += ["409", "503"]
        if self.method in BODY_WRITES:
            codes.append("415")
        if self.get_auth() or getattr(self.view, "throttle_classes", None):
            codes.append("429")
        # a read the state can refuse (e.g. rows a step has not written yet) names its codes
        codes += [c for c in getattr(self.view, "extra_error_codes", ()) if c not in codes]
        return codes

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        """A serializer's ``Meta.optional_fields`` are left out of ``required``: fields some
        callers never receive."""
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        optional = set(getattr(getattr(serializer, "Meta", None), "optional_fields", ()))
        if optional and "required" in schema:
            schema["required"] = [name for name in schema["required"] if name not in optional]
            if not schema["required"]:
                del schema["required"]
        return schema

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction=direction)
        for code in self.error_codes():
            if code not in responses:
                body = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                responses[code] = {**body, "description": ERROR_DESCRIPTIONS[code]}
        return dict(sorted(responses.items()))
