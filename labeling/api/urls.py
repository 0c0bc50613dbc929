"""URL patterns of the labeling API under /api/v1/, plus the OpenAPI schema and its docs page."""

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView

from labeling.api import depth, docs, review, tokens, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", docs.api_docs, name="api-docs"),
    path("projects/", views.ProjectListCreateView.as_view(), name="api-projects"),
    path("tokens/", tokens.TokenListCreateView.as_view(), name="api-tokens"),
    path("tokens/<id:user_id>/", tokens.TokenRevokeView.as_view(), name="api-token"),
    path("projects/<id:project_id>/", views.ProjectDetailView.as_view(), name="api-project"),
    path(
        "projects/<id:project_id>/stats/",
        views.ProjectStatsView.as_view(),
        name="api-project-stats",
    ),
    path(
        "projects/<id:project_id>/queue/next/",
        views.QueueNextView.as_view(),
        name="api-queue-next",
    ),
    path(
        "projects/<id:project_id>/queue/skip/",
        views.QueueSkipView.as_view(),
        name="api-queue-skip",
    ),
    path(
        "projects/<id:project_id>/queue/undo/",
        views.QueueUndoView.as_view(),
        name="api-queue-undo",
    ),
    path(
        "projects/<id:project_id>/gold/generate/",
        views.GoldGenerateView.as_view(),
        name="api-gold-generate",
    ),
    path(
        "comparisons/<id:comparison_id>/gold/",
        views.ComparisonGoldView.as_view(),
        name="api-comparison-gold",
    ),
    path(
        "comparisons/<id:comparison_id>/judgments/",
        views.JudgmentSubmitView.as_view(),
        name="api-judgments",
    ),
    # --- review, judgment edits, people (helper: review) ---
    path(
        "projects/<id:project_id>/comparisons/",
        review.ProjectComparisonsView.as_view(),
        name="api-review-comparisons",
    ),
    path(
        "comparisons/<id:comparison_id>/",
        review.ComparisonReviewView.as_view(),
        name="api-review-comparison",
    ),
    path(
        "comparisons/<id:comparison_id>/comments/",
        review.ComparisonCommentsView.as_view(),
        name="api-review-comments",
    ),
    path(
        "comparisons/<id:comparison_id>/adjudication/",
        review.ComparisonAdjudicationView.as_view(),
        name="api-review-adjudication",
    ),
    path("judgments/<id:judgment_id>/", review.JudgmentEditView.as_view(), name="api-judgment"),
    path(
        "projects/<id:project_id>/members/",
        review.ProjectMembersView.as_view(),
        name="api-project-members",
    ),
    path(
        "projects/<id:project_id>/members/<id:user_id>/",
        review.ProjectMemberView.as_view(),
        name="api-project-member",
    ),
    path(
        "projects/<id:project_id>/invites/",
        review.ProjectInvitesView.as_view(),
        name="api-project-invites",
    ),
    # --- rank: labeling depth (issue 13) ---
    path(
        "projects/<id:project_id>/labeling-settings/",
        depth.DepthSettingsView.as_view(),
        name="api-depth-settings",
    ),
    path(
        "projects/<id:project_id>/ranking-sets/",
        depth.RankingSetsView.as_view(),
        name="api-ranking-sets",
    ),
    path(
        "projects/<id:project_id>/rankings/next/",
        depth.RankingNextView.as_view(),
        name="api-rankings-next",
    ),
    path(
        "projects/<id:project_id>/rankings/skip/",
        depth.RankingSkipView.as_view(),
        name="api-rankings-skip",
    ),
    path(
        "projects/<id:project_id>/rankings/undo/",
        depth.RankingUndoView.as_view(),
        name="api-rankings-undo",
    ),
    path(
        "ranking-sets/<id:ranking_set_id>/rankings/",
        depth.RankingSubmitView.as_view(),
        name="api-rankings-submit",
    ),
    path(
        "projects/<id:project_id>/export/rankings/",
        depth.RankingsExportView.as_view(),
        name="api-export-rankings",
    ),
    path(
        "projects/<id:project_id>/export/rewrite/",
        depth.RewriteExportView.as_view(),
        name="api-export-rewrite",
    ),
    path(
        "projects/<id:project_id>/onboarding/",
        depth.OnboardingView.as_view(),
        name="api-onboarding",
    ),
    path(
        "projects/<id:project_id>/onboarding/acknowledge/",
        depth.OnboardingAcknowledgeView.as_view(),
        name="api-onboarding-acknowledge",
    ),
    path(
        "projects/<id:project_id>/onboarding/answers/",
        depth.OnboardingAnswerView.as_view(),
        name="api-onboarding-answers",
    ),
    # --- end rank ---
]
