"""The htmx pages of the model side (admins only): rounds, one round live, checkpoints.

Each view parses input, calls one service or selector, and renders one template; htmx requests
get the named partial whose name is the id of the element it replaces, and responses vary on
``HX-Request``. Every form also works without JavaScript (POST, then redirect).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from labeling.models import Project
from labeling.roles import (
    FORM_ERROR_STATUS,
    is_admin,
    is_fragment_request,
    login_required,
)
from labeling.safeinput import db_id
from labeling.services import LabelingError
from rlhf import charts, selectors, services, tasks
from rlhf.forms import RoundLaunchForm
from rlhf.methods import DEFAULT_METHOD, METHOD_REGISTRY, PPO_NOTE, ConfigError
from rlhf.models import Checkpoint, ModelSpec, Round


def _require_admin(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins manage tuning rounds and checkpoints.")


def _render(
    request: HttpRequest, template: str, partial: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    name = f"{template}#{partial}" if is_fragment_request(request) else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- rounds ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def project_rounds(request: HttpRequest, project_id: int) -> HttpResponse:
    """The round list and the launch form.

    ``?method=`` swaps in that method's defaults; ``?preview=1`` with the form's fields checks
    them and previews the round (the form's values kept). POST launches, then redirects.
    """
    _require_admin(request)
    project = get_object_or_404(Project, pk=project_id)
    status = 200
    partial = "round-list"

    def launch_form(data: Any, method: str) -> RoundLaunchForm:
        method = method if method in METHOD_REGISTRY else DEFAULT_METHOD
        defaults = selectors.launch_defaults(project, method)
        return RoundLaunchForm(data, method=method, defaults=defaults)

    form: RoundLaunchForm | None = None
    if request.method == "POST":
        form = launch_form(request.POST, request.POST.get("method", DEFAULT_METHOD))
        partial = "launch-form"
        if form.is_valid():
            try:
                round_ = services.round_launch(
                    project=project,
                    method=form.cleaned_data["method"],
                    config=form.overrides(),
                    created_by=request.user,
                    promote_pending=form.wants_promotion,
                )
            except LabelingError as exc:
                form.add_config_error(exc.field, exc.message)
                status = exc.status
            else:
                messages.success(request, launched_message(round_))
                return redirect("rlhf:round_detail", round_id=round_.pk)
        else:
            status = FORM_ERROR_STATUS
    elif "preview" in request.GET:
        form = launch_form(request.GET, request.GET.get("method", DEFAULT_METHOD))
        partial = "launch-form"
    elif "method" in request.GET:
        partial = "launch-form"
    if form is None and not (partial == "round-list" and is_fragment_request(request)):
        # the launch form with its defaults (the polled round list alone needs none)
        form = launch_form(None, request.GET.get("method", DEFAULT_METHOD))
    # The preview of a launch: for the launch form (a method switch, a changed field, a refused
    # launch); the plain list page loads the form again to show it (counting rows takes a while).
    preview = None
    if partial == "launch-form" and form is not None:
        preview = _launch_preview(project, form)
    context = {
        "project": project,
        "form": form,
        "preview": preview,
        "min_snapshot": settings.PAIRWISE_MIN_SNAPSHOT,
        "rounds": selectors.project_rounds(project),
        "ppo_note": PPO_NOTE,
    }
    return _render(request, "rlhf/rounds.html", partial, context, status=status)


def launched_message(round_: Round) -> str:
    """The launch's confirmation, with what the gate said of the pending candidate if asked."""
    message = f"Round {round_.number} launched from checkpoint #{round_.parent_checkpoint_id}."
    if round_.launch_decision:
        line = selectors.launch_decision_line(round_.launch_decision)
        message += f" {line[0].upper()}{line[1:]}."
    return message


def _launch_preview(project: Project, form: RoundLaunchForm) -> selectors.LaunchPreview | None:
    """The round the form would launch, or None (its errors then say why)."""
    if form.is_bound and (
        not form.is_valid() and any(name != NON_FIELD_ERRORS for name in form.errors)
    ):
        return None
    method = form.cleaned_data["method"] if form.is_bound else form.entry.name
    try:
        return selectors.launch_preview(
            project,
            method,
            form.overrides() if form.is_bound else {},
            promote_pending=form.wants_promotion,
        )
    except ConfigError as exc:
        if not form.errors.get(exc.field or "__all__"):
            form.add_config_error(exc.field, str(exc))
        return None


def _round_context(round_: Round) -> dict[str, Any]:
    runs = selectors.round_runs(round_)
    return {
        "project": round_.project,
        "round": round_,
        "runs": [
            {"run": run, "curves": charts.curves_for_run(run.metrics_history)} for run in runs
        ],
        "queue": selectors.round_queue_figures(round_),
        "queue_name": tasks.task_queue_name(),
        "snapshot_export_url": selectors.round_export_url(round_),
        "reward_export_url": selectors.round_reward_export_url(round_),
        "rows_urls": selectors.round_rows_urls(round_, runs),
        "signals": selectors.round_signals(round_),
    }


@login_required
def round_detail(request: HttpRequest, round_id: int) -> HttpResponse:
    """One round: a progress bar per step, curves, the log tail; polls itself while active."""
    _require_admin(request)
    rounds = Round.objects.select_related(
        "project", "checkpoint", "parent_checkpoint", "reward_checkpoint"
    )
    round_ = get_object_or_404(rounds, pk=round_id)
    return _render(request, "rlhf/round_detail.html", "round-live", _round_context(round_))


@login_required
@require_POST
def round_cancel(request: HttpRequest, round_id: int) -> HttpResponse:
    _require_admin(request)
    round_ = get_object_or_404(Round, pk=round_id)
    try:
        services.round_cancel(round=round_)
    except LabelingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Round {round_.number}: cancel requested.")
    return redirect("rlhf:round_detail", round_id=round_.pk)


@login_required
@require_POST
def round_retry(request: HttpRequest, round_id: int) -> HttpResponse:
    _require_admin(request)
    round_ = get_object_or_404(Round, pk=round_id)
    try:
        services.round_retry(round=round_)
    except LabelingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Round {round_.number} queued again.")
    return redirect("rlhf:round_detail", round_id=round_.pk)


# --- checkpoints -------------------------------------------------------------------------------


@login_required
def project_checkpoints(request: HttpRequest, project_id: int) -> HttpResponse:
    """The human leaderboard, the lineage tree with metrics and human win-rates against named
    opponents, and promote buttons (gated; admins may force)."""
    _require_admin(request)
    project = get_object_or_404(Project, pk=project_id)
    lineage = selectors.checkpoint_lineage(project)
    context = {
        "project": project,
        "nodes": lineage.nodes,
        "standings": lineage.standings,
        "leaderboard": lineage.leaderboard_rows(),
        "min_lower_bound": settings.PAIRWISE_PROMOTION_MIN_LOWER_BOUND,
        "reward_models": selectors.reward_checkpoints(project).select_related("created_by"),
        "model_specs": ModelSpec.objects.all(),
        "current_model": selectors.project_model_spec(project),
        "model_locked": Round.objects.filter(project=project).exists(),
    }
    return _render(request, "rlhf/checkpoints.html", "checkpoint-tree", context)


@login_required
@require_POST
def project_model(request: HttpRequest, project_id: int) -> HttpResponse:
    """Choose the base model the project tunes (before its first round)."""
    _require_admin(request)
    project = get_object_or_404(Project, pk=project_id)
    chosen = request.POST.get("model_spec", "")
    pk = db_id(chosen)
    model_spec = ModelSpec.objects.filter(pk=pk).first() if pk is not None else None
    if model_spec is None:
        messages.error(request, "choose one of the model specs")
        return redirect("rlhf:project_checkpoints", project_id=project.pk)
    try:
        services.project_model_set(project=project, model_spec=model_spec)
    except LabelingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{project.name} now tunes {model_spec.name}.")
    return redirect("rlhf:project_checkpoints", project_id=project.pk)


@login_required
@require_POST
def checkpoint_promote(request: HttpRequest, checkpoint_id: int) -> HttpResponse:
    """Promote through the gate; ``force=1`` (the refusal's "promote anyway") skips it, recorded."""
    _require_admin(request)
    checkpoint = get_object_or_404(Checkpoint, pk=checkpoint_id)
    force = request.POST.get("force", "") in ("1", "true", "on")
    try:
        services.checkpoint_promote(
            checkpoint=checkpoint, force=force, promoted_by=request.user.get_username()
        )
    except LabelingError as exc:
        messages.error(request, exc.message)
    else:
        forced = " (forced past the promotion gate; recorded)" if force else ""
        messages.success(request, f"Checkpoint #{checkpoint.pk} is now the champion{forced}.")
    return redirect("rlhf:project_checkpoints", project_id=checkpoint.project_id)


@login_required
@require_POST
def checkpoint_human_eval(request: HttpRequest, checkpoint_id: int) -> HttpResponse:
    """Send a checkpoint vs the champion to human evaluation (its held-out pairs into the queue)."""
    _require_admin(request)
    checkpoint = get_object_or_404(Checkpoint, pk=checkpoint_id)
    try:
        sent = services.checkpoint_human_eval(
            checkpoint=checkpoint, requested_by=request.user.get_username()
        )
    except LabelingError as exc:
        messages.error(request, exc.message)
    else:
        missing = (
            f"; {sent['missing']} held-out prompts lack a response of one side"
            if sent["missing"]
            else ""
        )
        messages.success(
            request,
            f"Checkpoint #{checkpoint.pk} vs #{sent['opponent']}: {sent['created']} new "
            f"comparisons at the front of the queue ({sent['batch']}){missing}.",
        )
    return redirect("rlhf:project_checkpoints", project_id=checkpoint.project_id)
