"""Django admin registrations for the labeling data."""

from typing import Any

from django.contrib import admin

from labeling.models import (
    Adjudication,
    Assignment,
    Comparison,
    Judgment,
    JudgmentRevision,
    Onboarding,
    Project,
    ProjectInvite,
    Prompt,
    Ranking,
    RankingSet,
    Response,
    ReviewComment,
)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "judgments_per_comparison",
        "lease_minutes",
        "gold_rate",
        "queue_order",
        "created_at",
    ]
    filter_horizontal = ["annotators", "reviewers"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "external_id", "split", "source", "created_at"]
    list_filter = ["project", "split", "source"]
    search_fields = ["external_id"]


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "model_name", "checkpoint_ref", "created_at"]
    list_filter = ["model_name"]
    raw_id_fields = ["prompt"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "prompt",
        "priority",
        "judgment_count",
        "status",
        "batch",
        "gold_answer",
    ]
    list_filter = ["project", "status", "batch", "gold_answer"]
    raw_id_fields = ["prompt", "response_a", "response_b"]
    # Written only by the queue engine (labeling.queue), from the judgments stored; gold only
    # through labeling.services.comparison_gold_set / _clear (the project's Gold page, the API).
    readonly_fields = ["judgment_count", "gold_answer"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "annotator", "comparison", "status", "leased_at", "expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["comparison"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "annotator", "comparison", "choice", "strength", "source", "created_at"]
    list_filter = ["choice", "source"]
    raw_id_fields = ["comparison"]


# --- review, people (helper: review): read-only; written through labeling.services ---


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(JudgmentRevision)
class JudgmentRevisionAdmin(_ReadOnly):
    list_display = ["id", "judgment", "choice", "strength", "replaced_at"]
    raw_id_fields = ["judgment"]


@admin.register(Adjudication)
class AdjudicationAdmin(_ReadOnly):
    list_display = ["comparison", "choice", "strength", "adjudicator", "updated_at"]
    raw_id_fields = ["comparison"]


@admin.register(ReviewComment)
class ReviewCommentAdmin(_ReadOnly):
    list_display = ["id", "comparison", "author", "created_at"]
    raw_id_fields = ["comparison"]


@admin.register(ProjectInvite)
class ProjectInviteAdmin(_ReadOnly):
    list_display = ["id", "project", "role", "note", "expires_at", "used_at", "revoked_at"]
    exclude = ["token_hash"]


# --- rank: rankings and onboarding (labeling.ranking, labeling.onboarding); written only there ---


@admin.register(RankingSet)
class RankingSetAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "prompt", "size", "ranking_count", "status", "batch"]
    list_filter = ["project", "status"]
    raw_id_fields = ["prompt", "responses"]
    readonly_fields = ["ranking_count"]


@admin.register(Ranking)
class RankingAdmin(admin.ModelAdmin):
    list_display = ["id", "annotator", "ranking_set", "order", "created_at"]
    raw_id_fields = ["ranking_set"]
    readonly_fields = ["order", "display_order"]


@admin.register(Onboarding)
class OnboardingAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "annotator", "acknowledged_at", "attempt", "last_score"]
    list_filter = ["project"]


# --- end rank ---
