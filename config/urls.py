"""URL map: pages, the REST API under /api/v1/, and the Django admin."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path, register_converter

from labeling.converters import DatabaseIdConverter
from labeling.views import LogoutView

# <id:...>: a database id, at most 2**63 - 1 (a larger one matches no route: 404).
register_converter(DatabaseIdConverter, "id")


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever the page links: send them to the static icon."""
    return HttpResponseRedirect(static("img/favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("labeling.api.urls")),
    path("api/v1/", include("rlhf.api.urls")),
    # labeling.interchange.urls holds both its pages and its /api/v1/ endpoints, full paths.
    path("", include("labeling.interchange.urls")),
    path("", include("rlhf.urls")),
    path("", include("labeling.urls")),
]
