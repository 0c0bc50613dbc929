"""Pages answer refused form input with 422, never 400, whichever view refused it.

In DEBUG, django-htmx's error handler replaces the whole document with any 400/403/404/500
answer to an htmx request, so a form error would wipe the page; ``base.html``'s htmx-config swaps
422 (and 409) into the form's target like a success. Views say 422 themselves
(``labeling.roles.page_error_status``); this middleware holds the rule for every page, those
added later included: an HTML answer of 400 to a page's POST becomes 422. The API (``/api/``)
keeps its 400s.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from labeling.roles import FORM_ERROR_STATUS


class PageFormErrorStatus:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 400
            and request.method == "POST"
            and not request.path.startswith("/api/")
            and response.get("Content-Type", "").startswith("text/html")
        ):
            response.status_code = FORM_ERROR_STATUS
            response.reason_phrase = "Unprocessable Content"
        return response
