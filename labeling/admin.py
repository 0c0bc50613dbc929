"""Django admin registrations for the labeling data."""

from django.contrib import admin

from labeling.models import (
    Assignment,
    Comparison,
    Judgment,
    Onboarding,
    Project,
    Prompt,
    Ranking,
    RankingSet,
    Response,
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
    filter_horizontal = ["annotators"]


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
