"""The interchange pages (admins): upload prompts, responses or a preference dataset, and
export a dataset. The upload form posts here (htmx swaps the ``upload-result`` partial; a plain
post redirects after success or shows the page again with 422); the export form is a plain GET
to the export API, which streams the file.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from labeling import selectors
from labeling.interchange.formats import ImportRejected, SourceFile, rows_read
from labeling.interchange.forms import ExportForm, UploadForm
from labeling.interchange.imports import ImportResult, prompts_import, responses_import
from labeling.interchange.preference_imports import preferences_import
from labeling.models import Project
from labeling.roles import FORM_ERROR_STATUS, is_admin, is_fragment_request
from labeling.services import LabelingError


def _admin_project(request: HttpRequest, project_id: int) -> Project:
    """A project the user may see (404 otherwise) and manage (403 for annotators)."""
    try:
        project = selectors.project_get_visible(user=request.user, project_id=project_id)
    except Project.DoesNotExist as exc:
        raise Http404("No such project.") from exc
    if not is_admin(request.user):
        raise PermissionDenied("Only admins import and export.")
    return project


def _import(project: Project, form: UploadForm) -> ImportResult:
    data = form.cleaned_data
    upload = data["file"]
    source = SourceFile(upload, upload.size, upload.name, upload.content_type or "")
    rows = rows_read(source, container=data["container"] or None)
    service: Any = {
        "prompts": prompts_import,
        "responses": partial(responses_import, max_pairs=data["max_pairs"]),
        "preferences": partial(preferences_import, dataset_format=data["dataset_format"] or "trl"),
    }[data["kind"]]
    return service(project=project, rows=rows)


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _admin_project(request, project_id)
    context: dict[str, Any] = {"project": project, "errors": [], "result": None}
    status = 200
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                result = _import(project, form)
            except ImportRejected as exc:
                context["errors"] = [str(error) for error in exc.errors]
                status = exc.status
            except LabelingError as exc:
                context["errors"] = [exc.message]
                status = exc.status
            else:
                if not is_fragment_request(request):
                    messages.success(request, f"Imported: {result.summary()}")
                    return HttpResponseRedirect(reverse("interchange-upload", args=[project.pk]))
                context["result"] = result
                form = UploadForm(initial={"kind": form.cleaned_data["kind"]})
        else:
            status = FORM_ERROR_STATUS
    else:
        form = UploadForm()
    context["form"] = form
    template = (
        "labeling/upload.html#upload-result"
        if is_fragment_request(request)
        else "labeling/upload.html"
    )
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_http_methods(["GET"])
def export(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _admin_project(request, project_id)
    context = {
        "project": project,
        "form": ExportForm(),
        "api_url": reverse("api-export", args=[project.pk]),
    }
    return render(request, "labeling/export.html", context)
