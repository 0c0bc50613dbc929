"""API of the labeling-depth features (issue 13): rankings, onboarding, the depth settings and
the rankings / rewrite exports. Parse, call one service or selector, render; the rules are in
``labeling.ranking``, ``labeling.onboarding`` and ``labeling.services``.
"""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import onboarding, ranking, selectors, services
from labeling.interchange import depth_exports
from labeling.models import (
    RANKING_MAX_K,
    RANKING_MIN_K,
    AssignmentStatus,
    Choice,
    Comparison,
    Project,
    Prompt,
    RankingLease,
    RankingSet,
)
from labeling.roles import is_admin


def _project(request: Request, project_id: int) -> Project:
    try:
        return selectors.project_get_visible(user=request.user, project_id=project_id)
    except Project.DoesNotExist:
        raise NotFound(f"no project {project_id}") from None


def _admin_project(request: Request, project_id: int) -> Project:
    project = _project(request, project_id)
    if not is_admin(request.user):
        raise PermissionDenied("only admins may do this")
    return project


def _parsed(serializer_class: type[serializers.Serializer[Any]], request: Request) -> Any:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _texts(prompt: Prompt, responses: list[Any]) -> dict[str, Any]:
    return {
        "prompt": {"id": prompt.pk, "external_id": prompt.external_id, "messages": prompt.messages},
        "responses": [{"id": r.pk, "text": r.text} for r in responses],
    }


def ranking_lease_payload(lease: RankingLease) -> dict[str, Any]:
    prompt, responses = ranking.ranking_lease_content(lease)
    return {
        "id": lease.pk,
        "ranking_set": lease.ranking_set_id,
        "expires_at": lease.expires_at.isoformat(),
        **_texts(prompt, responses),
    }


# --- settings ------------------------------------------------------------------------------------


class DepthSettingsSerializer(serializers.Serializer[Any]):
    task_kind = serializers.ChoiceField(choices=["pairwise", "ranking"], required=False)
    ask_acceptable = serializers.BooleanField(required=False)
    onboarding_required = serializers.BooleanField(required=False)
    qualification_items = serializers.IntegerField(required=False)
    qualification_pass_mark = serializers.FloatField(required=False)


def _settings_body(project: Project) -> dict[str, Any]:
    return {name: getattr(project, name) for name in services.PROJECT_DEPTH_FIELDS}


class DepthSettingsView(APIView):
    @extend_schema(
        tags=["projects"],
        summary="The labeling-depth settings: task kind, acceptable check, onboarding",
        responses={200: DepthSettingsSerializer},
    )
    def get(self, request: Request, project_id: int) -> Response:
        return Response(_settings_body(_project(request, project_id)))

    @extend_schema(
        tags=["projects"],
        summary="Change the labeling-depth settings (admins)",
        request=DepthSettingsSerializer,
        responses={200: DepthSettingsSerializer},
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project = _admin_project(request, project_id)
        data = _parsed(DepthSettingsSerializer, request)
        return Response(_settings_body(services.project_depth_set(project=project, **data)))


# --- rankings ------------------------------------------------------------------------------------


class RankingSetsCreateSerializer(serializers.Serializer[Any]):
    size = serializers.IntegerField(default=RANKING_MAX_K, help_text="K, 3-9")
    seed = serializers.IntegerField(default=0)
    prompts = serializers.ListField(
        child=serializers.IntegerField(), required=False, allow_null=True, default=None
    )


class RankingSetsView(APIView):
    @extend_schema(
        tags=["rankings"],
        summary="Make ranking sets of the project's prompts (admins)",
        description=f"A set of up to `size` ({RANKING_MIN_K}-{RANKING_MAX_K}) responses for each "
        "prompt with at least 3 (or for the listed `prompts`).",
        request=RankingSetsCreateSerializer,
        responses={201: OpenApiResponse(description="{created, ranking_sets: [ids]}")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _admin_project(request, project_id)
        data = _parsed(RankingSetsCreateSerializer, request)
        prompts = None
        if data["prompts"] is not None:
            prompts = [Prompt(pk=pk) for pk in data["prompts"]]
        created = services.ranking_sets_create(
            project=project, size=data["size"], seed=data["seed"], prompts=prompts
        )
        return Response(
            {"created": len(created), "ranking_sets": [s.pk for s in created]},
            status=status.HTTP_201_CREATED,
        )


class RankingNextView(APIView):
    @extend_schema(
        tags=["rankings"],
        summary="Lease your next ranking set",
        description="Your open lease if you hold one; 204 when none is left; 403 until your "
        "onboarding is done; 409 in a pairwise project. `responses` are in the order shown.",
        request=None,
        responses={200: OpenApiResponse(description="{id, ranking_set, prompt, responses}")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _project(request, project_id)
        services.onboarding_check(annotator=request.user, project=project)
        lease = services.ranking_lease_next(annotator=request.user, project=project)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ranking_lease_payload(lease))


class RankingSkipSerializer(serializers.Serializer[Any]):
    lease = serializers.IntegerField()


class RankingSkipView(APIView):
    @extend_schema(
        tags=["rankings"],
        summary="Skip your leased ranking set",
        request=RankingSkipSerializer,
        responses={200: OpenApiResponse(description="{skipped}")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _project(request, project_id)
        data = _parsed(RankingSkipSerializer, request)
        lease = RankingLease.objects.filter(
            pk=data["lease"],
            annotator_id=request.user.pk,
            project=project,
            status=AssignmentStatus.ACTIVE,
        ).first()
        if lease is None:
            raise services.Conflict("no such active ranking lease", field="lease")
        services.ranking_skip(annotator=request.user, lease=lease)
        return Response({"skipped": lease.pk})


class RankingSubmitSerializer(serializers.Serializer[Any]):
    order = serializers.JSONField(
        help_text="Response ids best first; a list of ids inside is a tie: [7, [3, 9], 4]. "
        "Must name each of the set's responses exactly once."
    )
    time_spent_ms = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=2_147_483_647
    )


class RankingSubmitView(APIView):
    @extend_schema(
        tags=["rankings"],
        summary="Submit your ranking of a leased set",
        description="Stored with its C(K, 2) derived pairwise judgments, atomically. A retry "
        "answers 200 with the stored ranking and writes nothing; a bad order 400.",
        request=RankingSubmitSerializer,
        responses={201: OpenApiResponse(description="{id, ranking_set, order, judgments, ...}")},
    )
    def post(self, request: Request, ranking_set_id: int) -> Response:
        ranking_set = RankingSet.objects.filter(pk=ranking_set_id).first()
        if ranking_set is None:
            raise NotFound(f"no ranking set {ranking_set_id}")
        _project(request, ranking_set.project_id)
        data = _parsed(RankingSubmitSerializer, request)
        result = services.ranking_submit(
            annotator=request.user,
            ranking_set=ranking_set,
            order=data["order"],
            time_spent_ms=data["time_spent_ms"],
        )
        body = {
            "id": result.ranking.pk,
            "ranking_set": ranking_set.pk,
            "order": result.ranking.order,
            "judgments": [j.pk for j in result.judgments],
            "pairs_kept": result.pairs_kept,
            "created": result.created,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else 200)


class RankingUndoView(APIView):
    @extend_schema(
        tags=["rankings"],
        summary="Take back your last ranking",
        description="Its derived judgments go with it; its set is leased to you again.",
        request=None,
        responses={200: OpenApiResponse(description="the lease, as rankings/next gives it")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _project(request, project_id)
        lease = services.ranking_undo(annotator=request.user, project=project)
        return Response(ranking_lease_payload(lease))


# --- exports -------------------------------------------------------------------------------------


def _jsonl(rows: Any, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        depth_exports.jsonl(rows), content_type="application/jsonl; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class RankingsExportView(APIView):
    @extend_schema(
        tags=["export"],
        summary="Export the rankings (admins), as rankings or as their derived pairs",
        parameters=[OpenApiParameter("as", str, enum=list(depth_exports.RANKING_SHAPES))],
        responses={200: OpenApiResponse(description="JSON Lines")},
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project = _admin_project(request, project_id)
        shape = request.query_params.get("as", "rankings")
        if shape not in depth_exports.RANKING_SHAPES:
            raise services.LabelingError("as must be rankings or pairs", field="as")
        return _jsonl(
            depth_exports.rankings_rows(project, as_=shape), f"project-{project.pk}-{shape}.jsonl"
        )


class RewriteExportView(APIView):
    @extend_schema(
        tags=["export"],
        summary="Export the comparisons to rewrite (admins): both bad or not acceptable",
        responses={200: OpenApiResponse(description="JSON Lines")},
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project = _admin_project(request, project_id)
        return _jsonl(depth_exports.rewrite_rows(project), f"project-{project.pk}-rewrite.jsonl")


# --- onboarding ----------------------------------------------------------------------------------


def _item(comparison: Comparison | None) -> dict[str, Any] | None:
    if comparison is None:
        return None
    return {
        "comparison": comparison.pk,
        **_texts(comparison.prompt, [comparison.response_a, comparison.response_b]),
    }


def _status_body(annotator: Any, project: Project) -> dict[str, Any]:
    state = onboarding.onboarding_status(annotator=annotator, project=project)
    return {
        "required": state.required,
        "ready": state.ready,
        "reason": state.reason,
        "acknowledged": state.acknowledged,
        "qualified": state.qualified,
        "qualification_items": state.qualification_items,
        "answered": state.answered,
        "attempt": state.attempt,
        "last_score": state.last_score,
        "pass_mark": state.pass_mark,
        "guidelines": project.guidelines,
        "next_item": _item(state.next_item),
    }


class OnboardingView(APIView):
    @extend_schema(
        tags=["onboarding"],
        summary="Your onboarding in a project: guidelines, qualification, next item",
        responses={200: OpenApiResponse(description="{ready, reason, next_item, ...}")},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = _project(request, project_id)
        return Response(_status_body(request.user, project))


class OnboardingAcknowledgeView(APIView):
    @extend_schema(
        tags=["onboarding"],
        summary="Acknowledge the project's current guidelines",
        request=None,
        responses={200: OpenApiResponse(description="your onboarding status")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _project(request, project_id)
        services.guidelines_acknowledge(annotator=request.user, project=project)
        return Response(_status_body(request.user, project))


class QualificationAnswerSerializer(serializers.Serializer[Any]):
    comparison = serializers.IntegerField()
    choice = serializers.ChoiceField(choices=Choice.choices)


class OnboardingAnswerView(APIView):
    @extend_schema(
        tags=["onboarding"],
        summary="Answer a qualification item",
        description="The last item of an attempt scores it: `passed` at or above the pass mark.",
        request=QualificationAnswerSerializer,
        responses={201: OpenApiResponse(description="{correct, finished, passed, score, ...}")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _project(request, project_id)
        data = _parsed(QualificationAnswerSerializer, request)
        result = services.qualification_answer(
            annotator=request.user,
            project=project,
            comparison_id=data["comparison"],
            choice=data["choice"],
        )
        body = {
            "finished": result.finished,
            "passed": result.passed,
            "score": result.score,
            **_status_body(request.user, project),
        }
        return Response(body, status=status.HTTP_201_CREATED)
