"""The review, judgment-edit and people endpoints of the API (helper: review).

Roles as on the pages: reviewers (``Project.reviewers``) and admins list comparisons, read every
vote, comment and adjudicate; an annotator of the project gets 403 there, anyone else 404 (ids
cannot be probed). Annotators edit their own judgments (``PATCH /judgments/{id}/``). Only admins
manage members and invites. Every write is one service call (``labeling.services``).
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import EmptyPage, Paginator
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors, services
from labeling.models import (
    Adjudication,
    Choice,
    Comparison,
    Flag,
    Judgment,
    Project,
    ProjectInvite,
    ProjectRole,
    ReviewComment,
)
from labeling.review_forms import ReviewFilterForm
from labeling.roles import can_review, is_admin
from labeling.services import LabelingError

PAGE_SIZE = 25
MAX_PAGE_SIZE = 200


def _iso(value: Any) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


def _review_project(request: Request, project_id: int) -> Project:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise NotFound(f"no project {project_id}")
    if can_review(request.user, project):
        return project
    if project.annotators.filter(pk=getattr(request.user, "pk", 0)).exists():
        raise PermissionDenied("only the project's reviewers and admins may review")
    raise NotFound(f"no project {project_id}")


def _review_comparison(request: Request, comparison_id: int) -> Comparison:
    project_id = (
        Comparison.objects.filter(pk=comparison_id).values_list("project_id", flat=True).first()
    )
    if project_id is None:
        raise NotFound(f"no comparison {comparison_id}")
    try:
        project = _review_project(request, project_id)
    except NotFound:
        raise NotFound(f"no comparison {comparison_id}") from None
    return selectors.comparison_for_review(project=project, comparison_id=comparison_id)


def _admin_project(request: Request, project_id: int) -> Project:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise NotFound(f"no project {project_id}")
    if not is_admin(request.user):
        raise PermissionDenied("only admins manage a project's people")
    return project


def _response(response: Any) -> dict[str, Any]:
    return {"id": response.pk, "text": response.text, "model_name": response.model_name}


def _parsed(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- payloads ---------------------------------------------------------------------------------


def _vote(judgment: Judgment, *, with_revisions: bool) -> dict[str, Any]:
    body = {
        "id": judgment.pk,
        "annotator": judgment.annotator.get_username(),
        "choice": judgment.choice,
        "strength": judgment.strength,
        "rationale": judgment.rationale,
        "flags": judgment.flags,
        "shown_left": judgment.shown_left,
        "time_spent_ms": judgment.time_spent_ms,
        "source": judgment.source,
        "created_at": _iso(judgment.created_at),
    }
    if with_revisions:
        body["revisions"] = [
            {
                "choice": revision.choice,
                "strength": revision.strength,
                "rationale": revision.rationale,
                "flags": revision.flags,
                "replaced_at": _iso(revision.replaced_at),
            }
            for revision in judgment.revisions.all()
        ]
    return body


def _adjudication(adjudication: Adjudication | None) -> dict[str, Any] | None:
    if adjudication is None:
        return None
    return {
        "choice": adjudication.choice,
        "strength": adjudication.strength,
        "note": adjudication.note,
        "adjudicator": adjudication.adjudicator.get_username()
        if adjudication.adjudicator
        else None,
        "created_at": _iso(adjudication.created_at),
        "updated_at": _iso(adjudication.updated_at),
    }


def _comment(comment: ReviewComment) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "author": comment.author.get_username() if comment.author else None,
        "text": comment.text,
        "created_at": _iso(comment.created_at),
    }


def _comparison(comparison: Comparison, *, detail: bool) -> dict[str, Any]:
    summary = selectors.votes_summary(comparison)
    body: dict[str, Any] = {
        "id": comparison.pk,
        "project": comparison.project_id,
        "status": comparison.status,
        "batch": comparison.batch,
        "gold_answer": comparison.gold_answer or None,
        "prompt": {
            "id": comparison.prompt_id,
            "external_id": comparison.prompt.external_id,
            "messages": comparison.prompt.messages,
        },
        "response_a": _response(comparison.response_a),
        "response_b": _response(comparison.response_b),
        "votes": [_vote(j, with_revisions=detail) for j in comparison.judgments.all()],
        "counts": summary["counts"],
        "disagreement": summary["disagreement"],
        "flagged": summary["flagged"],
        "decision": summary["decision"],
        "adjudication": _adjudication(summary["adjudication"]),
    }
    if detail:
        body["comments"] = [_comment(c) for c in comparison.comments.all()]
    return body


# --- input shapes ------------------------------------------------------------------------------


class CommentInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=services.COMMENT_MAX, trim_whitespace=False)


class AdjudicationInputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=Choice.choices)
    strength = serializers.IntegerField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class JudgmentEditSerializer(serializers.Serializer):
    """The judgment's new values in canonical terms (a / b / tie / both_bad)."""

    choice = serializers.ChoiceField(choices=Choice.choices)
    strength = serializers.IntegerField(required=False, allow_null=True, default=None)
    rationale = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    flags = serializers.ListField(
        child=serializers.ChoiceField(choices=Flag.choices), required=False, default=list
    )


class MemberInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=ProjectRole.choices)


class InviteInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ProjectRole.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    valid_days = serializers.IntegerField(required=False, default=services.INVITE_DAYS)


FILTER_PARAMETERS = [
    OpenApiParameter("q", str, description="Text in the prompt or either response."),
    OpenApiParameter("round", int, description="Round number (0: comparisons no round made)."),
    OpenApiParameter("annotator", str, description="Judged by this username."),
    OpenApiParameter("disagreement", bool, description="Only comparisons whose votes differ."),
    OpenApiParameter("flag", str, description="any, or one flag: " + ", ".join(Flag.values)),
    OpenApiParameter("gold", str, description="yes / no"),
    OpenApiParameter("adjudicated", str, description="yes / no"),
    OpenApiParameter("status", str, description="open / complete / closed"),
    OpenApiParameter("page", int, description="1-based page number."),
    OpenApiParameter("page_size", int, description=f"1-{MAX_PAGE_SIZE} (default {PAGE_SIZE})."),
]


def _page_number(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name) or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise LabelingError(f"{name} must be a whole number from 1 to {high}", field=name)
    return int(raw)


# --- views ---------------------------------------------------------------------------------------


@extend_schema(tags=["review"])
class ProjectComparisonsView(APIView):
    @extend_schema(
        summary="Browse a project's comparisons with their votes (reviewers, admins)",
        description="Newest first, filtered, paginated: `{count, page, pages, results}`.",
        parameters=FILTER_PARAMETERS,
        responses={200: OpenApiResponse(description="{count, page, pages, results: [...]}")},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = _review_project(request, project_id)
        params = request.query_params.copy()
        page_number = _page_number(request, "page", 1, 10**9)
        page_size = _page_number(request, "page_size", PAGE_SIZE, MAX_PAGE_SIZE)
        form = ReviewFilterForm(
            {key: value for key, value in params.items() if key not in ("page", "page_size")}
        )
        unknown = sorted(set(params) - set(form.fields) - {"page", "page_size"})
        if unknown:
            raise LabelingError(
                f"unknown parameter {unknown[0]!r}; allowed: {', '.join(form.fields)}",
                field=unknown[0],
            )
        if not form.is_valid():
            field, errors = next(iter(form.errors.items()))
            raise LabelingError(f"{field}: {errors[0]}", field=field)
        paginator = Paginator(
            selectors.comparisons_for_review(project=project, filters=form.filters()), page_size
        )
        try:
            page = paginator.page(page_number)
        except EmptyPage:
            raise NotFound(f"no page {page_number} (there are {paginator.num_pages})") from None
        return Response(
            {
                "count": paginator.count,
                "page": page.number,
                "pages": paginator.num_pages,
                "results": [_comparison(c, detail=False) for c in page.object_list],
            }
        )


@extend_schema(tags=["review"])
class ComparisonReviewView(APIView):
    @extend_schema(
        summary="One comparison with every vote, earlier values, comments, adjudication",
        responses={200: OpenApiResponse(description="The comparison (reviewers, admins).")},
    )
    def get(self, request: Request, comparison_id: int) -> Response:
        comparison = _review_comparison(request, comparison_id)
        return Response(_comparison(comparison, detail=True))


@extend_schema(tags=["review"])
class ComparisonCommentsView(APIView):
    @extend_schema(
        summary="Comment on a comparison (reviewers, admins)",
        request=CommentInputSerializer,
        responses={201: OpenApiResponse(description="{id, author, text, created_at}")},
    )
    def post(self, request: Request, comparison_id: int) -> Response:
        comparison = _review_comparison(request, comparison_id)
        data = _parsed(CommentInputSerializer, request)
        comment = services.comparison_comment_add(
            comparison=comparison, author=request.user, text=data["text"]
        )
        return Response(_comment(comment), status=status.HTTP_201_CREATED)


@extend_schema(tags=["review"])
class ComparisonAdjudicationView(APIView):
    @extend_schema(
        summary="Adjudicate a comparison (reviewers, admins)",
        description="Stored beside the votes, which stay as they are; a second one replaces the "
        "first. Exports use it with `adjudicated=prefer`.",
        request=AdjudicationInputSerializer,
        responses={200: OpenApiResponse(description="The adjudication.")},
    )
    def post(self, request: Request, comparison_id: int) -> Response:
        comparison = _review_comparison(request, comparison_id)
        data = _parsed(AdjudicationInputSerializer, request)
        adjudication = services.comparison_adjudicate(
            comparison=comparison, adjudicator=request.user, **data
        )
        return Response(_adjudication(adjudication))

    @extend_schema(
        summary="Withdraw a comparison's adjudication (reviewers, admins)",
        request=None,
        responses={204: OpenApiResponse(description="Withdrawn; 404 when there was none.")},
    )
    def delete(self, request: Request, comparison_id: int) -> Response:
        comparison = _review_comparison(request, comparison_id)
        if not services.comparison_adjudication_clear(comparison=comparison):
            raise NotFound("this comparison has no adjudication")
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["judgments"])
class JudgmentEditView(APIView):
    @extend_schema(
        summary="Edit your own judgment while its comparison is open",
        description="Canonical terms (a / b). Refused (409) once the comparison is closed or "
        "adjudicated. The values it replaces are kept and shown to reviewers.",
        request=JudgmentEditSerializer,
        responses={200: OpenApiResponse(description="The judgment, with its revisions.")},
    )
    def patch(self, request: Request, judgment_id: int) -> Response:
        try:
            judgment = selectors.judgment_get_own(annotator=request.user, judgment_id=judgment_id)
        except Judgment.DoesNotExist:
            raise NotFound(f"no judgment {judgment_id} of yours") from None
        data = _parsed(JudgmentEditSerializer, request)
        judgment = services.judgment_edit(annotator=request.user, judgment=judgment, **data)
        judgment = Judgment.objects.select_related("annotator").get(pk=judgment.pk)
        return Response(_vote(judgment, with_revisions=True))


def _members_body(project: Project) -> dict[str, Any]:
    members = selectors.project_members(project=project)
    return {
        role: [{"id": user.pk, "username": user.get_username()} for user in users]
        for role, users in members.items()
    }


@extend_schema(tags=["people"])
class ProjectMembersView(APIView):
    @extend_schema(
        summary="A project's annotators and reviewers (admins)",
        responses={200: OpenApiResponse(description="{annotator: [...], reviewer: [...]}")},
    )
    def get(self, request: Request, project_id: int) -> Response:
        return Response(_members_body(_admin_project(request, project_id)))

    @extend_schema(
        summary="Add an existing user as annotator or reviewer (admins)",
        request=MemberInputSerializer,
        responses={200: OpenApiResponse(description="The members.")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _admin_project(request, project_id)
        data = _parsed(MemberInputSerializer, request)
        user = selectors.user_by_username(username=data["username"])
        services.project_member_add(project=project, user=user, role=data["role"])
        return Response(_members_body(project))


@extend_schema(tags=["people"])
class ProjectMemberView(APIView):
    @extend_schema(
        summary="Remove a user's role in a project (admins)",
        parameters=[OpenApiParameter("role", str, description="annotator / reviewer")],
        request=None,
        responses={200: OpenApiResponse(description="The members.")},
    )
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        project = _admin_project(request, project_id)
        user = selectors.user_by_id(user_id=user_id)
        services.project_member_remove(
            project=project, user=user, role=request.query_params.get("role", "")
        )
        return Response(_members_body(project))


def _invite(invite: ProjectInvite) -> dict[str, Any]:
    return {
        "id": invite.pk,
        "role": invite.role,
        "note": invite.note,
        "expires_at": _iso(invite.expires_at),
        "used_at": _iso(invite.used_at),
        "revoked_at": _iso(invite.revoked_at),
    }


@extend_schema(tags=["people"])
class ProjectInvitesView(APIView):
    @extend_schema(
        summary="A project's invites (admins)",
        responses={200: OpenApiResponse(description="[{id, role, note, expires_at, ...}]")},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = _admin_project(request, project_id)
        return Response([_invite(i) for i in ProjectInvite.objects.filter(project=project)])

    @extend_schema(
        summary="Invite a new user with a one-time link (admins)",
        description="The answer holds the link (`url`) once: only the token's hash is stored.",
        request=InviteInputSerializer,
        responses={201: OpenApiResponse(description="{id, role, ..., url}")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _admin_project(request, project_id)
        data = _parsed(InviteInputSerializer, request)
        invite, token = services.invite_create(project=project, created_by=request.user, **data)
        url = request.build_absolute_uri(reverse("invite_accept", args=[token]))
        response = Response({**_invite(invite), "url": url}, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response
