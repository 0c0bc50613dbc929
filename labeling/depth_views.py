"""The htmx pages of the labeling depth (issue 13): the ranking page and the onboarding page,
and the gate the labeling page asks first (``label_gate``).

Like ``labeling.views``: a view parses input, calls one service, renders; the panel is a named
partial served alone to htmx and inside the full page otherwise (``Vary: HX-Request``); every
form works without JavaScript (POST/redirect/GET, or the page again with a 4xx and the reason).
The ranking form posts one ``rank-<response id>`` number per response (equal numbers: a tie);
static/js/rank.js moves the responses with the keyboard and keeps the numbers in step.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from labeling import onboarding, ranking, selectors, services
from labeling.forms import DepthSettingsForm, RankingSetsForm
from labeling.models import Choice, Project, RankingLease
from labeling.roles import is_admin, is_fragment_request, login_required
from labeling.services import Conflict, LabelingError

RANK_TEMPLATE = "labeling/rank.html"
ONBOARDING_TEMPLATE = "labeling/onboarding.html"


def _project(request: HttpRequest, project_id: int) -> Project:
    try:
        return selectors.project_get_visible(user=request.user, project_id=project_id)
    except Project.DoesNotExist as exc:
        raise Http404("No such project.") from exc


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """Send the whole browser to ``url`` (htmx: HX-Redirect, so no panel swaps a page)."""
    response: HttpResponse = (
        HttpResponseClientRedirect(url)
        if is_fragment_request(request)
        else HttpResponseRedirect(url, status=303)
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


def label_gate(request: HttpRequest, project: Project) -> HttpResponse | None:
    """Where the labeling page sends an annotator instead: the onboarding page until they are
    onboarded, the ranking page in a ranking project. None: label here."""
    try:
        services.onboarding_check(annotator=request.user, project=project)
    except services.NotOnboarded:
        return _go(request, reverse("onboarding", args=[project.pk]))
    if ranking.project_is_ranking(project):
        return _go(request, reverse("rank", args=[project.pk]))
    return None


# --- the ranking page ----------------------------------------------------------------------------


def _posted_ranks(request: HttpRequest, lease: RankingLease) -> dict[int, int]:
    ranks: dict[int, int] = {}
    size = len(lease.display_order)
    for response_id in lease.display_order:
        raw = request.POST.get(f"rank-{response_id}", "").strip()
        try:
            value = int(raw)
        except ValueError:
            raise LabelingError(
                f"Give every response a rank from 1 to {size}.", field="order"
            ) from None
        if not 1 <= value <= size:
            raise LabelingError(f"Ranks go from 1 to {size}; got {value}.", field="order")
        ranks[response_id] = value
    return ranks


def _render_rank(
    request: HttpRequest,
    project: Project,
    *,
    lease: RankingLease | None = None,
    ranks: dict[int, int] | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    if lease is None or not lease.is_live(now):
        lease = services.ranking_lease_next(annotator=request.user, project=project, now=now)
        ranks = None
    prompt = None
    items: list[dict[str, Any]] = []
    if lease is not None:
        prompt, responses = ranking.ranking_lease_content(lease)
        if ranks:
            responses = sorted(responses, key=lambda r: ranks.get(r.pk, len(responses)))
        previous = None
        for position, shown in enumerate(responses, start=1):
            rank = ranks.get(shown.pk, position) if ranks else position
            items.append(
                {"response": shown, "rank": rank, "tied": bool(ranks) and previous == rank}
            )
            previous = rank
    context = {
        "project": project,
        "lease": lease,
        "prompt": prompt,
        "items": items,
        "size": len(items),
        "error": error,
        "done_today": ranking.rankings_done_today(annotator=request.user, project=project),
        "remaining": ranking.ranking_sets_remaining(annotator=request.user, project=project)
        + (1 if lease else 0),
        "rank_url": reverse("rank", args=[project.pk]),
    }
    template = RANK_TEMPLATE + "#rank-panel" if is_fragment_request(request) else RANK_TEMPLATE
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _own_lease(request: HttpRequest, project: Project) -> RankingLease:
    try:
        return ranking.ranking_lease_get_own(
            annotator=request.user, project=project, lease_id=int(request.POST.get("lease", ""))
        )
    except (RankingLease.DoesNotExist, ValueError) as exc:
        raise Conflict("This form is out of date; here is your current ranking.") from exc


def _after(request: HttpRequest, project: Project) -> HttpResponse:
    if is_fragment_request(request):
        return _render_rank(request, project)
    response = HttpResponseRedirect(reverse("rank", args=[project.pk]), status=303)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_http_methods(["GET", "POST"])
def rank(request: HttpRequest, project_id: int) -> HttpResponse:
    """GET: the annotator's current ranking set. POST: rank it, then show the next one."""
    project = _project(request, project_id)
    if not ranking.project_is_ranking(project):
        return _go(request, reverse("label", args=[project.pk]))
    try:
        services.onboarding_check(annotator=request.user, project=project)
    except services.NotOnboarded:
        return _go(request, reverse("onboarding", args=[project.pk]))
    if request.method == "GET":
        return _render_rank(request, project)
    try:
        lease = _own_lease(request, project)
    except Conflict as exc:
        return _render_rank(request, project, error=exc.message, status=exc.status)
    ranks: dict[int, int] | None = None
    try:
        ranks = _posted_ranks(request, lease)
        raw_time = request.POST.get("time_spent_ms", "").strip()
        services.ranking_submit(
            annotator=request.user,
            ranking_set=lease.ranking_set,
            order=ranking.order_from_ranks(ranks),
            time_spent_ms=int(raw_time) if raw_time.isdigit() and len(raw_time) < 10 else None,
        )
    except LabelingError as exc:
        return _render_rank(
            request, project, lease=lease, ranks=ranks, error=exc.message, status=exc.status
        )
    return _after(request, project)


@login_required
@require_POST
def rank_skip(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    try:
        lease = _own_lease(request, project)
        services.ranking_skip(annotator=request.user, lease=lease)
    except LabelingError as exc:
        return _render_rank(request, project, error=exc.message, status=exc.status)
    return _after(request, project)


@login_required
@require_POST
def rank_undo(request: HttpRequest, project_id: int) -> HttpResponse:
    """Take back the last ranking: its set comes back, in the order it was first shown."""
    project = _project(request, project_id)
    try:
        services.ranking_undo(annotator=request.user, project=project)
    except LabelingError as exc:
        return _render_rank(request, project, error=exc.message, status=exc.status)
    return _after(request, project)


# --- the onboarding page -------------------------------------------------------------------------


def _render_onboarding(
    request: HttpRequest, project: Project, *, error: str = "", note: str = "", status: int = 200
) -> HttpResponse:
    state = onboarding.onboarding_status(annotator=request.user, project=project)
    item = state.next_item
    context = {
        "project": project,
        "state": state,
        "item": item,
        "left": item.response_a if item else None,
        "right": item.response_b if item else None,
        "error": error,
        "note": note,
        "work_url": reverse(
            "rank" if ranking.project_is_ranking(project) else "label", args=[project.pk]
        ),
    }
    template = (
        ONBOARDING_TEMPLATE + "#onboarding-panel"
        if is_fragment_request(request)
        else ONBOARDING_TEMPLATE
    )
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
def onboarding_page(request: HttpRequest, project_id: int) -> HttpResponse:
    # The page shows its notes in its own live region: a plain POST's result arrives as a message.
    note = " ".join(str(message) for message in messages.get_messages(request))
    return _render_onboarding(request, _project(request, project_id), note=note)


@login_required
@require_POST
def onboarding_acknowledge(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    services.guidelines_acknowledge(annotator=request.user, project=project)
    if not is_fragment_request(request):
        return HttpResponseRedirect(reverse("onboarding", args=[project.pk]), status=303)
    return _render_onboarding(request, project)


@login_required
@require_POST
def onboarding_answer(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    choice = request.POST.get("choice", "")
    try:
        if choice not in Choice.values:
            raise LabelingError("Pick a side, Tie or Both bad.", field="choice")
        result = services.qualification_answer(
            annotator=request.user,
            project=project,
            comparison_id=int(request.POST.get("comparison", "0") or 0),
            choice=choice,
        )
    except (LabelingError, ValueError) as exc:
        message = exc.message if isinstance(exc, LabelingError) else "This form is out of date."
        status = exc.status if isinstance(exc, LabelingError) else 400
        return _render_onboarding(request, project, error=message, status=status)
    note = ""
    if result.finished:
        score = f"{result.score:.0%}" if result.score is not None else ""
        note = (
            f"Passed with {score}. You can start labeling."
            if result.passed
            else f"Scored {score}, under the pass mark of {project.qualification_pass_mark:.0%}. "
            "Read the guidelines again and retry."
        )
    if not is_fragment_request(request):
        if note:  # a plain form (no JavaScript, or htmx not yet on the swapped form) sees it too
            messages.info(request, note)
        return HttpResponseRedirect(reverse("onboarding", args=[project.pk]), status=303)
    return _render_onboarding(request, project, note=note)


# --- the settings page (admins) ------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def depth_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    """Task kind, the acceptable check, onboarding; and making ranking sets."""
    if not is_admin(request.user):
        raise PermissionDenied("Only admins manage projects.")
    project = _project(request, project_id)
    initial = {name: getattr(project, name) for name in services.PROJECT_DEPTH_FIELDS}
    settings_form = DepthSettingsForm(initial=initial)
    sets_form = RankingSetsForm()
    status, note = 200, ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "sets":
                sets_form = RankingSetsForm(request.POST)
                if not sets_form.is_valid():
                    raise LabelingError("Responses per set: a number from 3 to 9.", field="size")
                made = services.ranking_sets_create(
                    project=project, size=sets_form.cleaned_data["size"]
                )
                note = f"{len(made)} ranking sets made."
            else:
                settings_form = DepthSettingsForm(request.POST)
                if not settings_form.is_valid():
                    raise LabelingError("Check the settings below.")
                services.project_depth_set(project=project, **settings_form.cleaned_data)
                note = "Settings saved."
        except LabelingError as exc:
            status, note = exc.status, exc.message
        else:
            if not is_fragment_request(request):
                return HttpResponseRedirect(
                    reverse("depth_settings", args=[project.pk]) + "?saved=1", status=303
                )
    elif request.GET.get("saved"):
        note = "Saved."
    context = {
        "project": project,
        "settings_form": settings_form,
        "sets_form": sets_form,
        "note": note,
        "error": status >= 400,
        "ranking_sets": project.ranking_sets.count(),
    }
    return render(request, "labeling/depth_settings.html", context, status=status)
