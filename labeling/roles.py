"""Who may do what: annotators label, reviewers review (per project), admins manage. Account
roles are Django groups; project roles are ``Project.annotators`` and ``Project.reviewers``.

Also the pages' ``login_required`` (both apps' htmx pages use it): an htmx swap of a logged-out
user gets ``HX-Redirect`` to the login page instead of the login page swapped into the panel.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required as django_login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

if TYPE_CHECKING:
    from labeling.models import Project

View = Callable[..., HttpResponse]

ANNOTATOR_GROUP = "annotator"
ADMIN_GROUP = "admin"


def is_admin(user: Any) -> bool:
    """Admins manage projects, rounds and exports. Cached on the user object per request."""
    if not getattr(user, "is_authenticated", False):
        return False
    cached = getattr(user, "_pairwise_is_admin", None)
    if cached is None:
        cached = bool(user.is_superuser or user.groups.filter(name=ADMIN_GROUP).exists())
        user._pairwise_is_admin = cached
    return cached


def can_label(user: Any, project: Project) -> bool:
    """Annotators label only in projects they are members of; admins label anywhere."""
    if is_admin(user):
        return True
    return bool(
        getattr(user, "is_authenticated", False) and project.annotators.filter(pk=user.pk).exists()
    )


# --- reviewers (helper: review) -----------------------------------------------------------------


def can_review(user: Any, project: Project) -> bool:
    """Reviewers browse, comment and adjudicate in the projects they review; admins anywhere.
    Reviewing grants no management (people, rounds, exports, uploads): those stay admins'."""
    if is_admin(user):
        return True
    return bool(
        getattr(user, "is_authenticated", False) and project.reviewers.filter(pk=user.pk).exists()
    )


def is_fragment_request(request: HttpRequest) -> bool:
    """An htmx swap (not a history restore, which needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


# A page's refused input answers 422, never 400 (labeling.middleware.PageFormErrorStatus): in DEBUG, django-htmx's error handler replaces
# the whole document with any 400/403/404/500 answer to an htmx request, and base.html's
# htmx-config swaps 422 (and 409) into the form's target like a success.
FORM_ERROR_STATUS = 422


def login_required(view: View) -> View:
    """``login_required`` that, for an htmx request of a logged-out user (an expired session),
    sends the whole browser to the login page instead of swapping it into the panel (a polling
    section would otherwise show the login form inside itself)."""
    plain = django_login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if is_fragment_request(request) and not request.user.is_authenticated:
            current = request.htmx.current_url_abs_path or request.get_full_path()  # type: ignore[attr-defined]
            login_url = reverse(settings.LOGIN_URL) + "?" + urlencode({"next": current})
            return HttpResponseClientRedirect(login_url)
        return plain(request, *args, **kwargs)

    return wrapper
