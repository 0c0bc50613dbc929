"""The htmx pages of the labeling side: home, projects, the labeling page, history and gold.

Each view parses input with a form, calls one service or selector, and renders. A view that
htmx swaps into the page serves both the full page and the fragment (the named partial whose
name is the id of the element it replaces), and varies on ``HX-Request``. Every form also works
without JavaScript: a plain POST answers with a redirect (POST/redirect/GET) or, on an error,
the page again with status 422/409 (never 400: see ``labeling.roles.FORM_ERROR_STATUS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from labeling import depth_views, selectors, services
from labeling.forms import (
    AssignmentForm,
    GoldGenerateForm,
    GoldMarkForm,
    GoldRateForm,
    JudgmentForm,
    ProjectCreateForm,
    QueueOrderForm,
)
from labeling.models import Assignment, Comparison, Project, Side
from labeling.roles import (
    FORM_ERROR_STATUS,
    is_admin,
    is_fragment_request,
    login_required,
)
from labeling.safeinput import db_id
from labeling.services import Conflict, LabelingError

LABEL_TEMPLATE = "labeling/label.html"
# The labeling page's words for a refusal of a field (the API's say it in the API's terms).
PAGE_WORDING = {
    "strength": "How much better? A winning side needs a strength: press 7, 8, 9 or 0 "
    "(or pick one), or choose Tie / Both bad.",
}
HISTORY_PAGE_SIZE = 25


View = Callable[..., HttpResponse]


def _admin_project(request: HttpRequest, project_id: int) -> Project:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins manage projects.")
    return get_object_or_404(Project, pk=project_id)


def _labeling_project(request: HttpRequest, project_id: int) -> Project:
    """A project the user may label in; 404 for others (no telling which ids exist)."""
    try:
        return selectors.project_get_visible(user=request.user, project_id=project_id)
    except Project.DoesNotExist as exc:
        raise Http404("No such project.") from exc


def _label_url(project: Project) -> str:
    return reverse("label", args=[project.pk])


# --- home and projects ---------------------------------------------------------------------


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Where login lands: admins on the project list, annotators on their labeling page."""
    if is_admin(request.user):
        return redirect("project_list")
    projects = list(selectors.projects_visible_to(user=request.user).order_by("name"))
    reviewing = list(selectors.projects_reviewable_by(user=request.user).order_by("name"))
    if len(projects) == 1 and not reviewing:
        return redirect("label", project_id=projects[0].pk)
    return render(request, "labeling/home.html", {"projects": projects, "reviewing": reviewing})


@login_required
@require_http_methods(["GET", "POST"])
def project_list(request: HttpRequest) -> HttpResponse:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins manage projects.")
    status = 200
    if request.method == "POST":
        form = ProjectCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                project = services.project_create(
                    name=data["name"],
                    created_by=request.user,
                    description=data["description"],
                    guidelines=data["guidelines"],
                    judgments_per_comparison=data["judgments_per_comparison"],
                    lease_minutes=data["lease_minutes"],
                    max_pairs_per_prompt=data["max_pairs_per_prompt"],
                    annotator_usernames=[user.username for user in data["annotators"]],
                )
            except LabelingError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                status = exc.status
            else:
                messages.success(request, f"Project “{project.name}” created.")
                return redirect("project_detail", project_id=project.pk)
        else:
            status = FORM_ERROR_STATUS
    else:
        form = ProjectCreateForm()
    context = {"projects": selectors.projects_with_counts(), "form": form}
    return render(request, "labeling/project_list.html", context, status=status)


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    """Overview: queue status and links to upload, export, rounds and checkpoints."""
    project = _admin_project(request, project_id)
    fragment = is_fragment_request(request)
    stats = selectors.project_stats(project=project, with_quality=not fragment)
    context = {
        "project": project,
        "stats": stats,
        "queue_order_form": QueueOrderForm(initial={"queue_order": project.queue_order}),
    }
    template = "labeling/project_detail.html"
    if fragment:
        template += "#queue-status"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_POST
def queue_order_set(request: HttpRequest, project_id: int) -> HttpResponse:
    """Switch the project's queue order; htmx gets the setting's section back."""
    project = _admin_project(request, project_id)
    form = QueueOrderForm(request.POST)
    error, status = "", 200
    try:
        if not form.is_valid():
            raise LabelingError(_form_error(form))
        project = services.project_queue_order_set(
            project=project, queue_order=form.cleaned_data["queue_order"]
        )
    except LabelingError as exc:
        error, status = exc.message, exc.status
    if not is_fragment_request(request):
        if error:
            messages.error(request, error)
        else:
            messages.success(request, f"Queue order: {project.get_queue_order_display()}.")
        response: HttpResponse = HttpResponseRedirect(
            reverse("project_detail", args=[project.pk]), status=303
        )
    else:
        context = {
            "project": project,
            "queue_order_form": form
            if error
            else QueueOrderForm(initial={"queue_order": project.queue_order}),
            "queue_order_error": error,
            "queue_order_saved": not error,
        }
        response = render(
            request, "labeling/project_detail.html#queue-order", context, status=status
        )
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- the labeling page -----------------------------------------------------------------------


def _canonical_choice(shown_choice: str, shown_left: str) -> str:
    """``left``/``right`` as the canonical response ``a``/``b`` the assignment showed there."""
    if shown_choice == "left":
        return shown_left
    if shown_choice == "right":
        return Side.B if shown_left == Side.A else Side.A
    return shown_choice


def _own_assignment(request: HttpRequest, project: Project, assignment_id: Any) -> Assignment:
    """The posted lease, with its content, if it is this annotator's in this project."""
    if not assignment_id:
        raise Conflict("This form is out of date; here is your current comparison.")
    try:
        pk = db_id(assignment_id)
        if pk is None:
            raise Assignment.DoesNotExist
        return selectors.assignment_get_own(
            annotator=request.user, project=project, assignment_id=pk
        )
    except Assignment.DoesNotExist as exc:
        raise Conflict("This comparison is not assigned to you; here is your current one.") from exc


def _render_label(
    request: HttpRequest,
    project: Project,
    *,
    assignment: Assignment | None = None,
    form: JudgmentForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    """The labeling page (or its #label-panel fragment) for the annotator's current lease.

    ``assignment`` is shown when it is still live (an error re-render keeps the annotator's
    input in ``form``); otherwise the annotator's next comparison is claimed.
    """
    now = timezone.now()
    if assignment is None or not assignment.is_live(now):
        claimed = services.assignment_claim_next(annotator=request.user, project=project, now=now)
        assignment = selectors.assignment_with_content(assignment=claimed) if claimed else None
        form = None
    left = right = None
    if assignment is not None:
        comparison = assignment.comparison
        left, right = (
            (comparison.response_a, comparison.response_b)
            if assignment.shown_left == Side.A
            else (comparison.response_b, comparison.response_a)
        )
        if form is None:
            form = JudgmentForm(initial={"assignment": assignment.pk})
    progress = selectors.labeling_progress(
        annotator=request.user,
        project=project,
        current_comparison_id=assignment.comparison_id if assignment else None,
        now=now,
    )
    context = {
        "project": project,
        "assignment": assignment,
        "prompt": assignment.comparison.prompt if assignment else None,
        "left": left,
        "right": right,
        "form": form,
        "error": error,
        "progress": progress,
        "label_url": _label_url(project),
    }
    template = LABEL_TEMPLATE + "#label-panel" if is_fragment_request(request) else LABEL_TEMPLATE
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _after_action(
    request: HttpRequest, project: Project, *, next_lease: Assignment | None = None
) -> HttpResponse:
    """Success: htmx gets the next comparison in this same response; a plain form a redirect."""
    if is_fragment_request(request):
        shown = selectors.assignment_with_content(assignment=next_lease) if next_lease else None
        return _render_label(request, project, assignment=shown)
    response = HttpResponseRedirect(_label_url(project), status=303)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _first_error(form: JudgmentForm | AssignmentForm) -> str:
    for field, errors in form.errors.items():
        if field == "choice" or field not in form.fields:
            return str(errors[0])
        label = form.fields[field].label or field.replace("_", " ").capitalize()
        return f"{label}: {errors[0]}"
    return "The form is incomplete."


@login_required
@require_http_methods(["GET", "POST"])
def label(request: HttpRequest, project_id: int) -> HttpResponse:
    """GET: the annotator's current comparison. POST: judge it, then show the next one."""
    project = _labeling_project(request, project_id)
    # --- rank: onboarding first; a ranking project ranks (labeling.depth_views) ---
    gate = depth_views.label_gate(request, project)
    if gate is not None:
        return gate
    # --- end rank ---
    if request.method == "GET":
        return _render_label(request, project)

    form = JudgmentForm(request.POST)
    try:
        assignment = _own_assignment(request, project, request.POST.get("assignment"))
    except Conflict as exc:
        return _render_label(request, project, error=exc.message, status=exc.status)
    if not form.is_valid():
        return _render_label(
            request,
            project,
            assignment=assignment,
            form=form,
            error=_first_error(form),
            status=FORM_ERROR_STATUS,
        )
    data = form.cleaned_data
    # --- rank: the absolute check (Project.ask_acceptable) ---
    acceptable = {"yes": True, "no": False}.get(data.get("acceptable") or "")
    if project.ask_acceptable and data["choice"] != "both_bad" and acceptable is None:
        return _render_label(
            request,
            project,
            assignment=assignment,
            form=form,
            error="Is the better response acceptable? Press Y or N.",
            status=400,
        )
    if data["choice"] == "both_bad":
        acceptable = None
    # --- end rank ---
    try:
        # One transaction stores the judgment and leases the next comparison (one commit).
        _, next_lease = services.judgment_submit_and_claim_next(
            annotator=request.user,
            comparison=assignment.comparison,
            project=project,
            choice=_canonical_choice(data["choice"], assignment.shown_left),
            strength=data["strength"],
            rationale=data["rationale"],
            flags=data["flags"],
            time_spent_ms=data["time_spent_ms"],
            acceptable=acceptable,  # rank
        )
    except LabelingError as exc:
        message = PAGE_WORDING.get(exc.field or "", exc.message)
        return _render_label(
            request, project, assignment=assignment, form=form, error=message, status=exc.status
        )
    return _after_action(request, project, next_lease=next_lease)


@login_required
@require_POST
def label_skip(request: HttpRequest, project_id: int) -> HttpResponse:
    """Pass on the current comparison; it is not offered to this annotator again."""
    project = _labeling_project(request, project_id)
    form = AssignmentForm(request.POST)
    try:
        if not form.is_valid():
            raise Conflict("This form is out of date; here is your current comparison.")
        assignment = _own_assignment(request, project, form.cleaned_data["assignment"])
        services.assignment_skip(annotator=request.user, assignment=assignment)
    except LabelingError as exc:
        return _render_label(request, project, error=exc.message, status=exc.status)
    messages.info(request, "Skipped. It will not be shown to you again.")
    return _after_action(request, project)


@login_required
@require_POST
def label_undo(request: HttpRequest, project_id: int) -> HttpResponse:
    """Take back the last judgment: its comparison comes back, on the same sides as before."""
    project = _labeling_project(request, project_id)
    try:
        services.judgment_undo(annotator=request.user, project=project)
    except LabelingError as exc:
        return _render_label(request, project, error=exc.message, status=exc.status)
    messages.info(request, "Your last judgment was taken back. Judge it again.")
    return _after_action(request, project)


@login_required
def history(request: HttpRequest, project_id: int) -> HttpResponse:
    """The annotator's own judgments in a project, newest first."""
    project = _labeling_project(request, project_id)
    judgments = selectors.judgments_by_annotator(annotator=request.user, project=project)
    page = Paginator(judgments, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"project": project, "page": page}
    return render(request, "labeling/history.html", context)


class LogoutView(auth_views.LogoutView):
    """Django's logout, which first gives back the user's leases so others can take them."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            services.assignment_release_all(annotator=request.user)
        return super().post(request, *args, **kwargs)


# --- gold items (admins) -------------------------------------------------------------------------

GOLD_PAGE_SIZE = 25
GOLD_TEMPLATE = "labeling/gold.html"


def _gold_context(request: HttpRequest, project: Project) -> dict[str, Any]:
    show = "gold" if request.GET.get("show") == "gold" else "all"
    comparisons = selectors.comparisons_for_gold(project=project, gold_only=show == "gold")
    page = Paginator(comparisons, GOLD_PAGE_SIZE).get_page(request.GET.get("page"))
    return {
        "project": project,
        "page": page,
        "show": show,
    }


@login_required
@require_http_methods(["GET", "POST"])
def gold_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """Gold items: the project's gold rate, generated gold, and each comparison's gold answer."""
    project = _admin_project(request, project_id)
    status = 200
    rate_form: forms.Form = GoldRateForm(initial={"gold_rate": project.gold_rate})
    generate_form: forms.Form = GoldGenerateForm()
    if request.method == "POST":
        action = request.POST.get("action")
        form: forms.Form = (
            GoldRateForm(request.POST) if action == "rate" else GoldGenerateForm(request.POST)
        )
        try:
            if not form.is_valid():
                raise LabelingError(_form_error(form))
            if action == "rate":
                services.project_gold_rate_set(
                    project=project, gold_rate=form.cleaned_data["gold_rate"]
                )
                messages.success(request, f"Gold rate set to {project.gold_rate:g}.")
            else:
                made = services.gold_generate(project=project, count=form.cleaned_data["count"])
                messages.success(request, f"{len(made)} gold comparisons generated.")
        except LabelingError as exc:
            messages.error(request, exc.message)
            status = exc.status
        else:
            return redirect("gold", project_id=project.pk)
        rate_form = form if action == "rate" else rate_form
        generate_form = form if action != "rate" else generate_form
    context = _gold_context(request, project)
    context.update(rate_form=rate_form, generate_form=generate_form)
    return render(request, GOLD_TEMPLATE, context, status=status)


def _form_error(form: forms.Form) -> str:
    for field, errors in form.errors.items():
        return f"{field}: {errors[0]}"
    return "The form is incomplete."


@login_required
@require_POST
def gold_mark(request: HttpRequest, project_id: int, comparison_id: int) -> HttpResponse:
    """Set (answer a / b) or clear (empty answer) a comparison's gold answer; htmx gets its row."""
    project = _admin_project(request, project_id)
    comparison = get_object_or_404(Comparison, pk=comparison_id, project=project)
    form = GoldMarkForm(request.POST)
    error, status = "", 200
    try:
        answer = form.cleaned_data["answer"] if form.is_valid() else ""
        if answer:
            comparison = services.comparison_gold_set(comparison=comparison, answer=answer)
        else:
            comparison = services.comparison_gold_clear(comparison=comparison)
    except LabelingError as exc:
        error, status = exc.message, exc.status
    if not is_fragment_request(request):
        if error:
            messages.error(request, error)
        response: HttpResponse = HttpResponseRedirect(
            reverse("gold", args=[project.pk]), status=303
        )
    else:
        row = selectors.comparisons_for_gold(project=project).get(pk=comparison.pk)
        context = {"project": project, "comparison": row, "error": error}
        response = render(request, GOLD_TEMPLATE + "#gold-row", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response
