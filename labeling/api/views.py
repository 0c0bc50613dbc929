"""Views of the labeling API: parse, call one service or selector, render.

Scoping: a project the caller is not a member of (admins are members of all) answers 404, and so
does a comparison in such a project, so ids cannot be probed. Annotators lease, judge, skip,
undo and read their projects; admins also create projects, read their figures and manage gold
items (``labeling.gold``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from labeling import selectors, services
from labeling.api.serializers import (
    GoldGenerateSerializer,
    GoldMarkSerializer,
    JudgmentInputSerializer,
    JudgmentResultSerializer,
    LeaseSerializer,
    ProjectCreateSerializer,
    ProjectSerializer,
    ProjectStatsSerializer,
    ProjectUpdateSerializer,
    SkipInputSerializer,
    SkipResultSerializer,
    judgment_payload,
    lease_payload,
)
from labeling.api.throttles import ScopedThrottle
from labeling.models import Assignment, Comparison, Project
from labeling.roles import is_admin

NEXT_PARAMETER = OpenApiParameter(
    "next", bool, description="Also lease and return the next comparison (same as body `next`)."
)


class IsAdminOrReadOnly(BasePermission):
    message = "only admins may do this"

    def has_permission(self, request: Any, view: Any) -> bool:
        return request.method in SAFE_METHODS or is_admin(request.user)


def _visible_project(request: Request, project_id: int) -> Project:
    try:
        return selectors.project_get_visible(user=request.user, project_id=project_id)
    except Project.DoesNotExist:
        raise NotFound(f"no project {project_id}") from None


def _listed(request: Request, project_id: int) -> Project:
    """A project as the project endpoints render it: with the caller's roles
    (``selectors.projects_listed_for``: the ones they annotate or review; admins any)."""
    project = selectors.projects_listed_for(user=request.user).filter(pk=project_id).first()
    if project is None:
        raise NotFound(f"no project {project_id}")
    return project


def _visible_comparison(request: Request, comparison_id: int) -> Comparison:
    try:
        return selectors.comparison_get_visible(user=request.user, comparison_id=comparison_id)
    except Comparison.DoesNotExist:
        raise NotFound(f"no comparison {comparison_id}") from None


def _wants_next(request: Request, body: dict[str, Any]) -> bool:
    flag = str(request.query_params.get("next", "")).strip().lower()
    return bool(body.get("next")) or flag in {"1", "true", "yes", "on"}


def _lease_data(lease: Assignment | None) -> dict[str, Any] | None:
    if lease is None:
        return None
    return lease_payload(selectors.assignment_with_content(assignment=lease))


def _parsed(serializer_class: type[BaseSerializer[Any]], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- projects ----------------------------------------------------------------------------------


@extend_schema(tags=["projects"])
class ProjectListCreateView(generics.ListCreateAPIView[Project]):
    """Projects: admins list all and create; others list the projects they annotate or review."""

    permission_classes = [IsAuthenticated, IsAdminOrReadOnly]
    serializer_class = ProjectSerializer

    def get_queryset(self) -> QuerySet[Project]:
        projects = selectors.projects_listed_for(user=self.request.user)
        if is_admin(self.request.user):
            projects = projects.prefetch_related("annotators")
        return projects

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "show_annotators": is_admin(self.request.user)}

    @extend_schema(summary="List the projects you can see")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a project (admins)",
        request=ProjectCreateSerializer,
        responses={201: ProjectSerializer},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _parsed(ProjectCreateSerializer, request)
        project = services.project_create(
            created_by=request.user,
            annotator_usernames=data.pop("annotators"),
            **data,
        )
        body = ProjectSerializer(_listed(request, project.pk), context={"show_annotators": True})
        return Response(body.data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["projects"])
class ProjectDetailView(APIView):
    permission_classes = [IsAuthenticated, IsAdminOrReadOnly]

    @extend_schema(summary="One project", responses={200: ProjectSerializer})
    def get(self, request: Request, project_id: int) -> Response:
        project = _listed(request, project_id)  # reviewers read the projects they review too
        context = {"show_annotators": is_admin(request.user)}
        return Response(ProjectSerializer(project, context=context).data)

    @extend_schema(
        summary="Change a project's settings (admins): its gold rate and queue order",
        request=ProjectUpdateSerializer,
        responses={200: ProjectSerializer},
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project = _admin_project(request, project_id)
        data = _parsed(ProjectUpdateSerializer, request)
        with transaction.atomic():  # both or neither
            if "gold_rate" in data:
                project = services.project_gold_rate_set(
                    project=project, gold_rate=data["gold_rate"]
                )
            if "queue_order" in data:
                project = services.project_queue_order_set(
                    project=project, queue_order=data["queue_order"]
                )
        return Response(
            ProjectSerializer(_listed(request, project.pk), context={"show_annotators": True}).data
        )


def _admin_project(request: Request, project_id: int) -> Project:
    project = _visible_project(request, project_id)
    if not is_admin(request.user):
        raise PermissionDenied("only admins may do this")
    return project


def _gold_body(comparison: Comparison) -> dict[str, Any]:
    return {"comparison": comparison.pk, "gold_answer": comparison.gold_answer or None}


@extend_schema(tags=["gold"])
class ComparisonGoldView(APIView):
    @extend_schema(
        summary="Make a comparison gold with its correct answer (admins)",
        description="Gold is served to every annotator once, unannounced; its judgments measure "
        "annotators and never become preferences. Answer: a or b.",
        request=GoldMarkSerializer,
        responses={200: OpenApiResponse(description="{comparison, gold_answer}")},
    )
    def post(self, request: Request, comparison_id: int) -> Response:
        comparison = _visible_comparison(request, comparison_id)
        if not is_admin(request.user):
            raise PermissionDenied("only admins may mark gold")
        data = _parsed(GoldMarkSerializer, request)
        comparison = services.comparison_gold_set(comparison=comparison, answer=data["answer"])
        return Response(_gold_body(comparison))

    @extend_schema(
        summary="Make a gold comparison a normal one again (admins)",
        request=None,
        responses={200: OpenApiResponse(description="{comparison, gold_answer: null}")},
    )
    def delete(self, request: Request, comparison_id: int) -> Response:
        comparison = _visible_comparison(request, comparison_id)
        if not is_admin(request.user):
            raise PermissionDenied("only admins may mark gold")
        comparison = services.comparison_gold_clear(comparison=comparison)
        return Response(_gold_body(comparison))


@extend_schema(tags=["gold"])
class GoldGenerateView(APIView):
    @extend_schema(
        summary="Generate gold comparisons from the project's responses (admins)",
        description="Each pairs a real response with a known-worse variant of it (truncated, "
        "sentences shuffled, or another prompt's response); the original is the answer.",
        request=GoldGenerateSerializer,
        responses={201: OpenApiResponse(description="{created, comparisons: [ids]}")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _admin_project(request, project_id)
        data = _parsed(GoldGenerateSerializer, request)
        options: dict[str, Any] = {"count": data["count"], "seed": data["seed"]}
        if data["variants"] is not None:
            options["variants"] = data["variants"]
        created = services.gold_generate(project=project, **options)
        return Response(
            {"created": len(created), "comparisons": [c.pk for c in created]},
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["projects"])
class ProjectStatsView(APIView):
    @extend_schema(
        summary="Progress, agreement and annotator figures (admins)",
        responses={200: ProjectStatsSerializer},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = _visible_project(request, project_id)
        if not is_admin(request.user):
            raise PermissionDenied("only admins may read a project's figures")

        return Response(ProjectStatsSerializer(selectors.project_stats(project=project)).data)


# --- the queue ---------------------------------------------------------------------------------


@extend_schema(tags=["queue"])
class QueueNextView(APIView):
    @extend_schema(
        summary="Lease your next comparison",
        description="Gives back your open lease if you hold one. 204: nothing left for you.",
        request=None,
        responses={200: LeaseSerializer, 204: OpenApiResponse(description="Queue empty.")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _visible_project(request, project_id)
        # --- rank: onboarding first (403 with the reason); ranking projects lease rankings ---
        services.onboarding_check(annotator=request.user, project=project)
        if project.task_kind == "ranking":
            raise services.Conflict(
                "this project ranks responses: lease from rankings/next/", field="task_kind"
            )
        # --- end rank ---
        lease = services.assignment_claim_next(annotator=request.user, project=project)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_lease_data(lease))


@extend_schema(tags=["queue"])
class QueueSkipView(APIView):
    @extend_schema(
        summary="Skip your leased comparison",
        description="Its slot frees and you are not offered it again.",
        parameters=[NEXT_PARAMETER],
        request=SkipInputSerializer,
        responses={200: SkipResultSerializer},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _visible_project(request, project_id)
        data = _parsed(SkipInputSerializer, request)
        lease = selectors.assignment_active(annotator=request.user, project=project)
        if lease is None or data.get("assignment", lease.pk) != lease.pk:
            raise services.Conflict("no such active lease to skip", field="assignment")
        services.assignment_skip(annotator=request.user, assignment=lease)
        body: dict[str, Any] = {"skipped": lease.pk, "comparison": lease.comparison_id}
        if _wants_next(request, data):
            nxt = services.assignment_claim_next(annotator=request.user, project=project)
            body["next"] = _lease_data(nxt)
        return Response(body)


@extend_schema(tags=["queue"])
class QueueUndoView(APIView):
    @extend_schema(
        summary="Take back your last judgment",
        description="Its comparison is leased to you again, shown the same way round.",
        request=None,
        responses={200: LeaseSerializer},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _visible_project(request, project_id)
        lease = services.judgment_undo(annotator=request.user, project=project)
        return Response(_lease_data(lease))


# --- judgments ---------------------------------------------------------------------------------


@extend_schema(tags=["judgments"])
class JudgmentSubmitView(APIView):
    throttle_classes = [ScopedThrottle]
    throttle_scope = "submit"

    @extend_schema(
        summary="Submit your judgment of a leased comparison",
        description=(
            "Idempotent: a retry answers 200 with the stored judgment and writes nothing. "
            "With `next` the next lease comes back in the same response."
        ),
        parameters=[NEXT_PARAMETER],
        request=JudgmentInputSerializer,
        responses={
            201: JudgmentResultSerializer,
            200: JudgmentResultSerializer,
        },
    )
    def post(self, request: Request, comparison_id: int) -> Response:
        comparison = _visible_comparison(request, comparison_id)
        data = _parsed(JudgmentInputSerializer, request)
        judgment = {
            "annotator": request.user,
            "comparison": comparison,
            "choice": data["choice"],
            "strength": data["strength"],
            "rationale": data["rationale"],
            "flags": data["flags"],
            "time_spent_ms": data["time_spent_ms"],
            "acceptable": data["acceptable"],  # rank
        }
        if _wants_next(request, data):
            # One transaction for both: one commit per judgment.
            result, nxt = services.judgment_submit_and_claim_next(
                project=comparison.project, **judgment
            )
            body = {**judgment_payload(result.judgment), "created": result.created}
            body["next"] = _lease_data(nxt)
        else:
            result = services.judgment_submit(**judgment)
            body = {**judgment_payload(result.judgment), "created": result.created}
        return Response(
            body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )
