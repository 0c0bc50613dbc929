"""URL map: pages, the REST API under /api/v1/, and the Django admin."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path

from labeling.views import LogoutView


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
