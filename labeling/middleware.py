"""Request-wide guards: unstorable text refused before any view, every API error in JSON.

``RefuseUnstorableText`` answers 400 (422 to a page's POST) to a query parameter or form field holding a NUL character
or a lone surrogate (``labeling.safeinput``), naming the field: on PostgreSQL such a value,
stored or merely looked up, raised a 500. JSON bodies are checked by the API's parser, files by
the imports.

``ApiErrorsAsJson`` gives every error response under ``/api/`` that is not JSON yet (Django's
404 for a path no route matches, a 405, a 403 from the CSRF check, the 500 page) the API's JSON
shape ``{"error", "field", "detail"}`` (``labeling.api.errors``), keeping its status and headers.

``PageFormErrorStatus``: pages answer refused form input with 422, never 400, whichever view
refused it. In DEBUG, django-htmx's error handler replaces the whole document with any 400/403/404/500
answer to an htmx request, so a form error would wipe the page; ``base.html``'s htmx-config swaps
422 (and 409) into the form's target like a success. Views answer a refusal with the service's
status (400); this middleware is the one place the rule lives, for every page, those added later
included: any HTML answer of 400 from a page (a form POST, a refused filter) becomes 422. The API (``/api/``) keeps its 400s.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError

from labeling.roles import FORM_ERROR_STATUS
from labeling.safeinput import text_problem

API_PREFIX = "/api/"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _refusal(request: HttpRequest, field: str | None, message: str) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"error": message, "field": field, "detail": None}, status=400)
    response = HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
    if request.method == "POST":
        response.status_code = FORM_ERROR_STATUS  # a page's refusal (PageFormErrorStatus)
        response.reason_phrase = "Unprocessable Content"
    return response


def _unstorable_field(request: HttpRequest) -> tuple[str, str] | None:
    """The first query parameter or form field (its name or a value) that cannot be stored."""
    sources = [("query parameter", request.GET)]
    if request.method == "POST" and request.content_type in FORM_TYPES:
        sources.append(("form field", request.POST))
    for kind, params in sources:
        for key, values in params.lists():
            for text in (key, *values):
                if isinstance(text, str) and (problem := text_problem(text)):
                    return key, f"{kind} {key!r} {problem}"
    return None


class RefuseUnstorableText:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            unstorable = _unstorable_field(request)
        except MultiPartParserError as exc:
            return _refusal(request, None, f"the multipart body cannot be read: {exc}")
        if unstorable is not None:
            return _refusal(request, *unstorable)
        return self.get_response(request)


def _error_message(request: HttpRequest, response: HttpResponse) -> str:
    if response.status_code == 404:
        return f"not found: no API endpoint or object at {request.path}"
    if response.status_code == 405:
        return f"method {request.method} not allowed here (allowed: {response.get('Allow', '')})"
    if response.status_code >= 500:
        return "server error: the request failed on our side and was logged"
    reason = response.content.decode("utf-8", "replace").strip()
    if response.get("Content-Type", "").startswith("text/plain") and 0 < len(reason) <= 500:
        return reason
    return response.reason_phrase.lower()


class ApiErrorsAsJson:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not _is_api(request)
            or response.get("Content-Type", "").startswith("application/json")
            or response.streaming
        ):
            return response
        body = {"error": _error_message(request, response), "field": None, "detail": None}
        json_response = JsonResponse(body, status=response.status_code)
        for header in KEPT_HEADERS:
            if header in response:
                json_response[header] = response[header]
        return json_response


class PageFormErrorStatus:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 400
            and not _is_api(request)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            response.status_code = FORM_ERROR_STATUS
            response.reason_phrase = "Unprocessable Content"
        return response
