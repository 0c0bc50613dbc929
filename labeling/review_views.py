"""The review pages (reviewers and admins), an annotator's edit of their own judgment, and the
people pages (admins) with the invite link a new user follows.

Thin views as in ``labeling.views``: a form parses, one service or selector acts, a template
renders. Review and people actions answer htmx with the named partial they replace and a plain
form with a redirect (POST/redirect/GET); errors re-render with 400/403/404/409.

Roles: reviewers (``Project.reviewers``) and admins review; annotators get 403 on review and
people pages; only admins manage people. The invite page needs no login: its token is the key.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from labeling import selectors, services
from labeling.models import Comparison, Judgment, Project, ProjectInvite, Side
from labeling.review_forms import (
    AdjudicationForm,
    CommentForm,
    InviteAcceptForm,
    InviteForm,
    JudgmentEditForm,
    MemberAddForm,
    MemberRemoveForm,
    ReviewFilterForm,
)
from labeling.roles import (
    can_review,
    is_admin,
    is_fragment_request,
    login_required,
)
from labeling.services import LabelingError

REVIEW_PAGE_SIZE = 25
REVIEW_TEMPLATE = "labeling/review.html"
DETAIL_TEMPLATE = "labeling/review_detail.html"
PEOPLE_TEMPLATE = "labeling/people.html"


def _reviewable_project(request: HttpRequest, project_id: int) -> Project:
    project = get_object_or_404(Project, pk=project_id)
    if not can_review(request.user, project):
        raise PermissionDenied("Only the project's reviewers and admins review.")
    return project


def _admin_project(request: HttpRequest, project_id: int) -> Project:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins manage a project's people.")
    return get_object_or_404(Project, pk=project_id)


def _form_error(form: Any) -> str:
    for field, errors in form.errors.items():
        if field == "__all__" or field not in form.fields:
            return str(errors[0])
        label = form.fields[field].label or field.replace("_", " ").capitalize()
        return f"{label}: {errors[0]}"
    return "The form is incomplete."


def _varied(response: HttpResponse) -> HttpResponse:
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- the review list and one comparison ----------------------------------------------------------


@login_required
def review_list(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project's comparisons, filtered (GET form) and paginated; htmx gets #review-results."""
    project = _reviewable_project(request, project_id)
    form = ReviewFilterForm(request.GET)
    status = 200
    if form.is_valid():
        comparisons = selectors.comparisons_for_review(project=project, filters=form.filters())
    else:
        comparisons, status = Comparison.objects.none(), 400
    page = Paginator(comparisons, REVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "project": project,
        "reviewing": True,
        "form": form,
        "page": page,
        "rows": [(c, selectors.votes_summary(c)) for c in page.object_list],
        "query": query.urlencode(),
        "error": _form_error(form) if form.errors else "",
    }
    template = REVIEW_TEMPLATE + ("#review-results" if is_fragment_request(request) else "")
    return _varied(render(request, template, context, status=status))


def _detail_context(
    project: Project,
    comparison_id: int,
    *,
    comment_form: CommentForm | None = None,
    adjudication_form: AdjudicationForm | None = None,
    comment_error: str = "",
    adjudication_error: str = "",
) -> dict[str, Any]:
    try:
        comparison = selectors.comparison_for_review(project=project, comparison_id=comparison_id)
    except Comparison.DoesNotExist as exc:
        raise Http404("No such comparison in this project.") from exc
    adjudication = selectors.adjudication_of(comparison)
    if adjudication_form is None:
        initial = {}
        if adjudication is not None:
            initial = {
                "choice": adjudication.choice,
                "strength": adjudication.strength,
                "note": adjudication.note,
            }
        adjudication_form = AdjudicationForm(initial=initial)
    return {
        "project": project,
        "reviewing": True,
        "comparison": comparison,
        "summary": selectors.votes_summary(comparison),
        "adjudication": adjudication,
        "comment_form": comment_form or CommentForm(),
        "adjudication_form": adjudication_form,
        "comment_error": comment_error,
        "adjudication_error": adjudication_error,
    }


@login_required
def review_detail(request: HttpRequest, project_id: int, comparison_id: int) -> HttpResponse:
    """One comparison: the prompt, both responses, every vote, comments and the adjudication."""
    project = _reviewable_project(request, project_id)
    return render(request, DETAIL_TEMPLATE, _detail_context(project, comparison_id))


def _detail_url(project: Project, comparison_id: int) -> str:
    return reverse("review_detail", args=[project.pk, comparison_id])


@login_required
@require_POST
def review_comment(request: HttpRequest, project_id: int, comparison_id: int) -> HttpResponse:
    """Add a comment; htmx gets #review-comments."""
    project = _reviewable_project(request, project_id)
    comparison = get_object_or_404(Comparison, pk=comparison_id, project=project)
    form = CommentForm(request.POST)
    error, status = "", 200
    try:
        if not form.is_valid():
            raise LabelingError(_form_error(form))
        services.comparison_comment_add(
            comparison=comparison, author=request.user, text=form.cleaned_data["text"]
        )
    except LabelingError as exc:
        error, status = exc.message, exc.status
    else:
        form = CommentForm()
    if not is_fragment_request(request) and not error:
        return _varied(HttpResponseRedirect(_detail_url(project, comparison.pk), status=303))
    context = _detail_context(project, comparison.pk, comment_form=form, comment_error=error)
    template = DETAIL_TEMPLATE + ("#review-comments" if is_fragment_request(request) else "")
    return _varied(render(request, template, context, status=status))


@login_required
@require_POST
def review_adjudicate(request: HttpRequest, project_id: int, comparison_id: int) -> HttpResponse:
    """Adjudicate (or, with action=clear, withdraw the adjudication); htmx gets
    #review-adjudication."""
    project = _reviewable_project(request, project_id)
    comparison = get_object_or_404(Comparison, pk=comparison_id, project=project)
    form = AdjudicationForm(request.POST)
    error, status = "", 200
    try:
        if request.POST.get("action") == "clear":
            services.comparison_adjudication_clear(comparison=comparison)
            form = None  # type: ignore[assignment]
        elif not form.is_valid():
            raise LabelingError(_form_error(form))
        else:
            data = form.cleaned_data
            services.comparison_adjudicate(
                comparison=comparison,
                adjudicator=request.user,
                choice=data["choice"],
                strength=data["strength"],
                note=data["note"],
            )
    except LabelingError as exc:
        error, status = exc.message, exc.status
    else:
        form = None  # type: ignore[assignment]
    if not is_fragment_request(request) and not error:
        return _varied(HttpResponseRedirect(_detail_url(project, comparison.pk), status=303))
    context = _detail_context(
        project, comparison.pk, adjudication_form=form, adjudication_error=error
    )
    template = DETAIL_TEMPLATE + ("#review-adjudication" if is_fragment_request(request) else "")
    return _varied(render(request, template, context, status=status))


# --- an annotator edits their own judgment -------------------------------------------------------


def _shown_to_canonical(shown_choice: str, shown_left: str) -> str:
    if shown_choice == "left":
        return shown_left
    if shown_choice == "right":
        return Side.B if shown_left == Side.A else Side.A
    return shown_choice


@login_required
@require_http_methods(["GET", "POST"])
def judgment_edit(request: HttpRequest, project_id: int, judgment_id: int) -> HttpResponse:
    """Change one's own judgment (shown as it was judged: same sides), keeping the old values."""
    try:
        project = selectors.project_get_visible(user=request.user, project_id=project_id)
        judgment = selectors.judgment_get_own(annotator=request.user, judgment_id=judgment_id)
    except (Project.DoesNotExist, Judgment.DoesNotExist) as exc:
        raise Http404("No such judgment of yours.") from exc
    if judgment.comparison.project_id != project.pk:
        raise Http404("No such judgment of yours.")
    error, status = "", 200
    if request.method == "POST":
        form = JudgmentEditForm(request.POST)
        try:
            if not form.is_valid():
                raise LabelingError(_form_error(form))
            data = form.cleaned_data
            services.judgment_edit(
                annotator=request.user,
                judgment=judgment,
                choice=_shown_to_canonical(data["choice"], judgment.shown_left),
                strength=data["strength"],
                rationale=data["rationale"],
                flags=data["flags"],
            )
        except LabelingError as exc:
            error, status = exc.message, exc.status
        else:
            messages.success(request, "Your judgment was changed; the earlier one is kept.")
            return HttpResponseRedirect(reverse("history", args=[project.pk]), status=303)
    else:
        form = JudgmentEditForm(
            initial={
                "choice": judgment.shown_choice,
                "strength": judgment.strength,
                "rationale": judgment.rationale,
                "flags": judgment.flags,
            }
        )
    comparison = judgment.comparison
    left, right = (
        (comparison.response_a, comparison.response_b)
        if judgment.shown_left == Side.A
        else (comparison.response_b, comparison.response_a)
    )
    refusal = selectors.judgment_edit_refusal(judgment=judgment)
    context = {
        "project": project,
        "editable": not refusal,
        "not_editable_reason": refusal,
        "judgment": judgment,
        "prompt": comparison.prompt,
        "left": left,
        "right": right,
        "form": form,
        "error": error,
        "revisions": list(judgment.revisions.all()),
    }
    return render(request, "labeling/judgment_edit.html", context, status=status)


# --- people (admins) ---------------------------------------------------------------------------


def _people_context(project: Project, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "project": project,
        "members": selectors.project_members(project=project),
        "invites": list(
            ProjectInvite.objects.filter(project=project).select_related("used_by")[:50]
        ),
        "add_form": MemberAddForm(),
        "invite_form": InviteForm(),
        "error": "",
        "invite_url": "",
    }
    context.update(extra)
    return context


def _people_response(
    request: HttpRequest, project: Project, status: int = 200, **extra: Any
) -> HttpResponse:
    context = _people_context(project, **extra)
    template = PEOPLE_TEMPLATE + ("#people" if is_fragment_request(request) else "")
    return _varied(render(request, template, context, status=status))


def _people_done(request: HttpRequest, project: Project, note: str) -> HttpResponse:
    if is_fragment_request(request):
        return _people_response(request, project, notice=note)
    messages.success(request, note)
    return _varied(HttpResponseRedirect(reverse("people", args=[project.pk]), status=303))


@login_required
@require_http_methods(["GET", "POST"])
def people(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project's annotators and reviewers, and its invites. POST adds a member."""
    project = _admin_project(request, project_id)
    if request.method == "GET":
        return _people_response(request, project)
    form = MemberAddForm(request.POST)
    try:
        if not form.is_valid():
            raise LabelingError(_form_error(form))
        user = selectors.user_by_username(username=form.cleaned_data["username"])
        role = form.cleaned_data["role"]
        services.project_member_add(project=project, user=user, role=role)
    except LabelingError as exc:
        return _people_response(request, project, exc.status, add_form=form, error=exc.message)
    return _people_done(request, project, f"{user.get_username()} is now a {role} here.")


@login_required
@require_POST
def people_remove(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _admin_project(request, project_id)
    form = MemberRemoveForm(request.POST)
    try:
        if not form.is_valid():
            raise LabelingError(_form_error(form))
        user = selectors.user_by_id(user_id=form.cleaned_data["user"])
        role = form.cleaned_data["role"]
        services.project_member_remove(project=project, user=user, role=role)
    except LabelingError as exc:
        return _people_response(request, project, exc.status, error=exc.message)
    return _people_done(request, project, f"{user.get_username()} is no longer a {role} here.")


@login_required
@require_POST
def invite_create(request: HttpRequest, project_id: int) -> HttpResponse:
    """Create an invite and show its link, once (only its hash is stored)."""
    project = _admin_project(request, project_id)
    form = InviteForm(request.POST)
    try:
        if not form.is_valid():
            raise LabelingError(_form_error(form))
        data = form.cleaned_data
        _, token = services.invite_create(
            project=project,
            role=data["role"],
            created_by=request.user,
            note=data["note"],
            valid_days=data["valid_days"],
        )
    except LabelingError as exc:
        return _people_response(request, project, exc.status, invite_form=form, error=exc.message)
    url = request.build_absolute_uri(reverse("invite_accept", args=[token]))
    response = _people_response(request, project, 201, invite_url=url)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def invite_revoke(request: HttpRequest, project_id: int, invite_id: int) -> HttpResponse:
    project = _admin_project(request, project_id)
    invite = get_object_or_404(ProjectInvite, pk=invite_id, project=project)
    try:
        services.invite_revoke(invite=invite)
    except LabelingError as exc:
        return _people_response(request, project, exc.status, error=exc.message)
    return _people_done(request, project, "The invite link no longer works.")


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The invite link: choose a username and password, join the project, and be logged in; or,
    logged in already, join with that account (one button)."""
    member = request.user.is_authenticated
    form: InviteAcceptForm | None = InviteAcceptForm(request.POST or None)
    error, status = "", 200
    invite: ProjectInvite | None = None
    try:
        invite = services.invite_usable(token=token)
    except LabelingError as exc:  # unknown (404), used, withdrawn or expired (409)
        form, error, status = None, exc.message, exc.status
    if invite is not None and form is not None and member and request.method == "POST":
        try:
            invite = services.invite_join(token=token, user=request.user)
        except LabelingError as exc:  # used meanwhile, or the role held already (409)
            form, error, status = None, exc.message, exc.status
        else:
            messages.success(request, f"You are a {invite.role} in {invite.project} now.")
            target = "label" if invite.role == "annotator" else "review"
            return HttpResponseRedirect(reverse(target, args=[invite.project_id]), status=303)
    elif invite is not None and form is not None and request.method == "POST":
        try:
            if not form.is_valid():
                raise LabelingError(_form_error(form))
            user, invite = services.invite_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
            )
        except LabelingError as exc:
            error, status = exc.message, exc.status
            if exc.field is None and exc.status == 409:  # used meanwhile
                form = None
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome! You are a {invite.role} in {invite.project}.")
            target = "label" if invite.role == "annotator" else "review"
            return HttpResponseRedirect(reverse(target, args=[invite.project_id]), status=303)
    response = render(
        request,
        "registration/invite.html",
        {"invite": invite, "form": form, "error": error, "member": member},
        status=status,
    )
    response["Referrer-Policy"] = "same-origin"  # the token is in the URL: never to other sites
    response["Cache-Control"] = "no-store"
    return response
