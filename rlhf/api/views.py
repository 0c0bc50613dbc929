"""Views of the tuning API (admins only): parse, call one service or selector, render."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django_tasks import TaskResultStatus
from django_tasks.exceptions import TaskResultDoesNotExist
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from labeling.models import Project, Split
from labeling.roles import is_admin
from labeling.services import Conflict
from rlhf import selectors, services, tasks
from rlhf.api.serializers import (
    CheckpointPromoteSerializer,
    CheckpointSerializer,
    GenerateQueuedSerializer,
    GenerateRequestSerializer,
    HumanEvalRequestSerializer,
    HumanEvalSerializer,
    JobSerializer,
    LeaderboardRowSerializer,
    ProjectModelSerializer,
    RoundLaunchSerializer,
    RoundSerializer,
    SampleSerializer,
)
from rlhf.methods import METHOD_REGISTRY
from rlhf.models import Checkpoint, ModelSpec, Round, RunStatus, Step, newest_attempts


class IsAdmin(BasePermission):
    message = "only admins may manage tuning rounds and checkpoints"

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_admin(request.user)


class AdminAPIView(APIView):
    permission_classes = [IsAuthenticated, IsAdmin]


def _round(round_id: int) -> Round:
    rounds = Round.objects.select_related("project", "checkpoint", "reward_checkpoint")
    # its runs once: the serializer reads them for the steps and for the rows links
    return get_object_or_404(rounds.prefetch_related("runs"), pk=round_id)


@extend_schema(tags=["rounds"])
class ProjectRoundsView(AdminAPIView):
    @extend_schema(
        summary="The project's tuning rounds", responses={200: RoundSerializer(many=True)}
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        rounds = list(
            selectors.project_rounds(project)
            .select_related("reward_checkpoint")
            .prefetch_related("runs")
        )
        tallies = selectors.round_human_tallies(rounds)
        return Response(RoundSerializer(rounds, many=True, context={"human_tallies": tallies}).data)

    @extend_schema(
        summary="Launch a tuning round",
        description="Freezes the judgment snapshot and queues reward → policy → evaluate → "
        "generate. 409 while another round of the project is queued or running.",
        request=RoundLaunchSerializer,
        responses={201: RoundSerializer},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        serializer = RoundLaunchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        round_ = services.round_launch(
            project=project,
            method=serializer.validated_data["method"],
            config=serializer.validated_data["config"],
            created_by=request.user,
            promote_pending=serializer.validated_data["promote_pending"],
        )
        return Response(RoundSerializer(round_).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["rounds"])
class RoundDetailView(AdminAPIView):
    @extend_schema(
        summary="A round with the progress of each step", responses={200: RoundSerializer}
    )
    def get(self, request: Request, round_id: int) -> Response:
        return Response(RoundSerializer(_round(round_id)).data)


@extend_schema(tags=["rounds"])
class RoundRowsView(AdminAPIView):
    extra_error_codes = ("409",)  # the step has not started

    @extend_schema(
        summary="The rows a round's reward or policy step trained on, exactly",
        description="The JSON Lines file the step was given when it started (prompt, chosen, "
        "rejected, margin, weight; a KTO policy step: prompt, completion, label), as a download; "
        "`X-Rows-Hash` is its preference hash (the one an export of the same rows shows). Unlike "
        "the round's export link, which runs the export with the round's filters on today's "
        "votes, it does not change when a judgment is edited or an adjudication changed after "
        "the round. 409 before the step has started; 404 for an online method's policy step "
        "(it trains on prompts and the reward model).",
        parameters=[
            OpenApiParameter(
                "step", str, enum=[Step.POLICY, Step.REWARD], required=False, default=Step.POLICY
            ),
        ],
        responses={(200, "application/jsonl"): OpenApiTypes.STR},
    )
    def get(self, request: Request, round_id: int) -> HttpResponseBase:
        round_ = _round(round_id)
        step = request.query_params.get("step", Step.POLICY)
        if step not in (Step.POLICY, Step.REWARD):
            raise ValidationError({"step": ["must be 'policy' or 'reward'"]})
        if step == Step.POLICY and METHOD_REGISTRY[round_.method].family == "online":
            raise NotFound(f"round {round_.number}'s policy step ({round_.method}) trains on "
                           "prompts and the reward model, not on preference rows: see "
                           "step=reward")  # fmt: skip
        run = next((r for r in newest_attempts(round_.runs.all()) if r.step == step), None)
        if run is None or run.status == RunStatus.QUEUED:
            raise Conflict(f"round {round_.number}'s {step} step has not started: its rows are "
                           "written when it starts")  # fmt: skip
        path = selectors.step_rows_file(run)
        if path is None:
            raise NotFound(f"round {round_.number}'s {step} step left no rows file in its run "
                           "directory (removed since?)")  # fmt: skip
        body = path.read_bytes()
        rows = [json.loads(line) for line in body.decode("utf-8").splitlines()]
        response = HttpResponse(body, content_type="application/jsonl; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="round-{round_.number}-{step}-rows.jsonl"'
        )
        response["X-Rows-Hash"] = selectors.snapshot_hash(rows)
        return response


@extend_schema(tags=["rounds"])
class RoundCancelView(AdminAPIView):
    @extend_schema(
        summary="Cancel a queued or running round",
        description="Queued steps stop at once; a running step gets SIGTERM, then SIGKILL.",
        request=None,
        responses={200: RoundSerializer},
    )
    def post(self, request: Request, round_id: int) -> Response:
        round_ = services.round_cancel(round=_round(round_id))
        return Response(RoundSerializer(round_).data)


@extend_schema(tags=["rounds"])
class RoundRetryView(AdminAPIView):
    @extend_schema(
        summary="Retry a failed or cancelled round from its first unfinished step",
        request=None,
        responses={200: RoundSerializer},
    )
    def post(self, request: Request, round_id: int) -> Response:
        round_ = services.round_retry(round=_round(round_id))
        return Response(RoundSerializer(round_).data)


@extend_schema(tags=["checkpoints"])
class ProjectCheckpointsView(AdminAPIView):
    @extend_schema(
        summary="The project's checkpoints (policies and reward models)",
        description="Each policy carries its human win-rate against a named opponent (its "
        "parent), against the current champion, and its Bradley-Terry strength.",
        responses={200: CheckpointSerializer(many=True)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        checkpoints = list(
            Checkpoint.objects.filter(project=project).select_related("model_spec").order_by("id")
        )
        context = {"standings": selectors.checkpoint_standings(project.pk, checkpoints)}
        return Response(CheckpointSerializer(checkpoints, many=True, context=context).data)


@extend_schema(tags=["checkpoints"])
class ProjectLeaderboardView(AdminAPIView):
    @extend_schema(
        summary="The human leaderboard of the project's policy checkpoints",
        description="Bradley-Terry strengths (choix, small ridge) from every human judgment "
        "between two checkpoints' responses, a tie or both-bad as half a win each way; "
        "bootstrap 95% intervals (200 resamples of the judgments, fixed seed). Strongest first.",
        responses={200: LeaderboardRowSerializer(many=True)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        checkpoints = list(Checkpoint.objects.policies().filter(project=project))
        standings = selectors.checkpoint_standings(project.pk, checkpoints, gates=False)
        return Response(LeaderboardRowSerializer(standings.leaderboard, many=True).data)


@extend_schema(tags=["checkpoints"])
class CheckpointPromoteView(AdminAPIView):
    @extend_schema(
        summary="Make a policy checkpoint the project's champion",
        description="Gated: the Wilson 95% lower bound of its human win-rate against the "
        "current champion must exceed PAIRWISE_PROMOTION_MIN_LOWER_BOUND (default 0.5). "
        "409 with the reason (and how many more judged pairs would decide it) otherwise; "
        "`force: true` promotes anyway, recorded in metrics.promotion and logged.",
        request=CheckpointPromoteSerializer,
        responses={200: CheckpointSerializer},
    )
    def post(self, request: Request, checkpoint_id: int) -> Response:
        checkpoint = get_object_or_404(
            Checkpoint.objects.select_related("model_spec"), pk=checkpoint_id
        )
        serializer = CheckpointPromoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.checkpoint_promote(
            checkpoint=checkpoint,
            force=serializer.validated_data["force"],
            promoted_by=request.user.get_username(),
        )
        return Response(CheckpointSerializer(checkpoint).data)


@extend_schema(tags=["checkpoints"])
class ProjectModelView(AdminAPIView):
    @extend_schema(
        summary="Choose the base model a project tunes (before its first round)",
        description="The project's base checkpoint (the root of its lineage) becomes that "
        "model spec's base model. 409 once the project has rounds.",
        request=ProjectModelSerializer,
        responses={200: CheckpointSerializer},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        serializer = ProjectModelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["model_spec"]
        try:
            model_spec = ModelSpec.objects.get(name=name)
        except ModelSpec.DoesNotExist:
            raise ValidationError({"model_spec": [f"no model spec named {name!r}"]}) from None
        base = services.project_model_set(project=project, model_spec=model_spec)
        return Response(CheckpointSerializer(base).data)


def _checkpoint(checkpoint_id: int) -> Checkpoint:
    return get_object_or_404(
        Checkpoint.objects.select_related("model_spec", "project"), pk=checkpoint_id
    )


@extend_schema(tags=["checkpoints"])
class CheckpointGenerateView(AdminAPIView):
    @extend_schema(
        summary="Sample a checkpoint (evaluation-only by default)",
        description="Enqueues a generation job on a worker: `samples` per prompt of `split`, "
        "stored as the checkpoint's responses (checkpoint_ref, generation params, seed). With "
        "`eval_only` (the default) no comparison is created: read the samples back with "
        "GET /api/v1/checkpoints/{id}/samples/. 202 when queued, with the job's id (`job`) and "
        "its address in `Location`: GET /api/v1/jobs/{job}/ says when it has finished. 400 "
        "naming the field otherwise.",
        request=GenerateRequestSerializer,
        responses={202: GenerateQueuedSerializer},
    )
    def post(self, request: Request, checkpoint_id: int) -> Response:
        checkpoint = _checkpoint(checkpoint_id)
        serializer = GenerateRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        queued = services.generation_request(checkpoint=checkpoint, **serializer.validated_data)
        headers = {}
        if queued["job"]:
            headers["Location"] = reverse("api-job", args=[queued["job"]])
        return Response(
            GenerateQueuedSerializer(queued).data, status=status.HTTP_202_ACCEPTED, headers=headers
        )


@extend_schema(tags=["jobs"])
class JobView(AdminAPIView):
    @extend_schema(
        summary="A background job's state",
        description="A job enqueued through the API (e.g. POST /api/v1/checkpoints/{id}/"
        "generate/): READY until a worker takes it, RUNNING, then SUCCESSFUL with its `result` "
        "or FAILED with its `errors`. 404 for an unknown id.",
        responses={200: JobSerializer},
    )
    def get(self, request: Request, job_id: str) -> Response:
        try:
            job = tasks.job_get(str(uuid.UUID(job_id)))
        except (ValueError, TaskResultDoesNotExist) as exc:
            raise NotFound("No such job.") from exc
        body = {
            "id": str(job.id),
            "task": job.task.name,
            "status": str(job.status),
            "enqueued_at": job.enqueued_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "result": job.return_value if job.status == TaskResultStatus.SUCCESSFUL else None,
            "errors": [
                f"{e.exception_class_path}: {e.traceback.strip().splitlines()[-1]}"
                for e in job.errors
            ],
        }
        return Response(JobSerializer(body).data)


@extend_schema(tags=["checkpoints"])
class CheckpointSamplesView(AdminAPIView):
    # The API's (largest page included); named here so that the schema documents the page.
    pagination_class: Any = api_settings.DEFAULT_PAGINATION_CLASS

    @extend_schema(
        summary="The responses a checkpoint generated",
        description="Every response whose checkpoint_ref is this checkpoint (a round's generate "
        "step, manage.py generate, the generate API): prompt, text, generation params, seed, "
        "split. Oldest first, paginated (limit / offset); `split` = test | train filters.",
        parameters=[
            OpenApiParameter("split", str, enum=["test", "train"], required=False),
        ],
        responses={200: SampleSerializer(many=True)},
    )
    def get(self, request: Request, checkpoint_id: int) -> Response:
        checkpoint = get_object_or_404(Checkpoint, pk=checkpoint_id)
        split = request.query_params.get("split", "")
        if split and split not in (Split.TEST, Split.TRAIN):
            raise ValidationError({"split": ["must be 'test' or 'train'"]})
        samples = selectors.checkpoint_samples(checkpoint, split=split or None)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(samples, request, view=self)
        return paginator.get_paginated_response(SampleSerializer(page, many=True).data)


@extend_schema(tags=["checkpoints"])
class CheckpointHumanEvalView(AdminAPIView):
    @extend_schema(
        summary="Send a checkpoint vs the champion (or `opponent`) to human evaluation",
        description="Pairs the two checkpoints' stored responses on the held-out prompts as "
        "`human-eval:X-vs-Y` comparisons at the front of the labeling queue and records the "
        "opponent on the checkpoint (metrics.human_eval). Held-out pairs never enter the queue "
        "otherwise. 400 when no held-out prompt has responses of both (sample them first).",
        request=HumanEvalRequestSerializer,
        responses={201: HumanEvalSerializer},
    )
    def post(self, request: Request, checkpoint_id: int) -> Response:
        checkpoint = _checkpoint(checkpoint_id)
        serializer = HumanEvalRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        opponent_id = serializer.validated_data["opponent"]
        opponent = None
        if opponent_id is not None:
            opponent = Checkpoint.objects.filter(pk=opponent_id).first()
            if opponent is None:
                raise ValidationError({"opponent": [f"no checkpoint #{opponent_id}"]})
        sent = services.checkpoint_human_eval(
            checkpoint=checkpoint,
            opponent=opponent,
            priority=serializer.validated_data["priority"],
            requested_by=request.user.get_username(),
        )
        return Response(HumanEvalSerializer(sent).data, status=status.HTTP_201_CREATED)
