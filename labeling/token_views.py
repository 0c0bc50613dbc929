"""The Tokens page (admins): create a user's API token (its key shown once), list tokens without
their keys, revoke one. htmx swaps the ``token-panel`` partial; without JavaScript the same forms
post and get the whole page back."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from labeling import tokens
from labeling.roles import is_admin, is_fragment_request, login_required
from labeling.services import LabelingError

TEMPLATE = "labeling/tokens.html"


def _render(request: HttpRequest, status: int = 200, **context: Any) -> HttpResponse:
    context = {
        "tokens": tokens.tokens_list(),
        "users": tokens.users_without_token(),
        "key_prefix_chars": tokens.KEY_PREFIX_CHARS,
        **context,
    }
    template = f"{TEMPLATE}#token-panel" if is_fragment_request(request) else TEMPLATE
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"  # a new key is on it
    patch_vary_headers(response, ["HX-Request"])
    return response


def _admin_only(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins manage API tokens.")


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    _admin_only(request)
    if request.method == "GET":
        return _render(request)
    try:
        token = tokens.token_create(by=request.user, user_id=request.POST.get("user"))
    except LabelingError as exc:
        return _render(request, status=exc.status, error=exc.message)
    return _render(request, status=201, new_token=token)


@login_required
@require_POST
def token_revoke(request: HttpRequest, user_id: int) -> HttpResponse:
    _admin_only(request)
    try:
        username = tokens.token_revoke(by=request.user, user_id=user_id)
    except LabelingError as exc:
        return _render(request, status=exc.status, error=exc.message)
    return _render(request, revoked=username)
