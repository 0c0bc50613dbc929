"""URL patterns of the labeling API under /api/v1/, plus the OpenAPI schema and its docs page."""

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView

from labeling.api import docs, review, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", docs.api_docs, name="api-docs"),
    path("projects/", views.ProjectListCreateView.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", views.ProjectDetailView.as_view(), name="api-project"),
    path(
        "projects/<int:project_id>/stats/",
        views.ProjectStatsView.as_view(),
        name="api-project-stats",
    ),
    path(
        "projects/<int:project_id>/queue/next/",
        views.QueueNextView.as_view(),
        name="api-queue-next",
    ),
    path(
        "projects/<int:project_id>/queue/skip/",
        views.QueueSkipView.as_view(),
        name="api-queue-skip",
    ),
    path(
        "projects/<int:project_id>/queue/undo/",
        views.QueueUndoView.as_view(),
        name="api-queue-undo",
    ),
    path(
        "projects/<int:project_id>/gold/generate/",
        views.GoldGenerateView.as_view(),
        name="api-gold-generate",
    ),
    path(
        "comparisons/<int:comparison_id>/gold/",
        views.ComparisonGoldView.as_view(),
        name="api-comparison-gold",
    ),
    path(
        "comparisons/<int:comparison_id>/judgments/",
        views.JudgmentSubmitView.as_view(),
        name="api-judgments",
    ),
    # --- review, judgment edits, people (helper: review) ---
    path(
        "projects/<int:project_id>/comparisons/",
        review.ProjectComparisonsView.as_view(),
        name="api-review-comparisons",
    ),
    path(
        "comparisons/<int:comparison_id>/",
        review.ComparisonReviewView.as_view(),
        name="api-review-comparison",
    ),
    path(
        "comparisons/<int:comparison_id>/comments/",
        review.ComparisonCommentsView.as_view(),
        name="api-review-comments",
    ),
    path(
        "comparisons/<int:comparison_id>/adjudication/",
        review.ComparisonAdjudicationView.as_view(),
        name="api-review-adjudication",
    ),
    path("judgments/<int:judgment_id>/", review.JudgmentEditView.as_view(), name="api-judgment"),
    path(
        "projects/<int:project_id>/members/",
        review.ProjectMembersView.as_view(),
        name="api-project-members",
    ),
    path(
        "projects/<int:project_id>/members/<int:user_id>/",
        review.ProjectMemberView.as_view(),
        name="api-project-member",
    ),
    path(
        "projects/<int:project_id>/invites/",
        review.ProjectInvitesView.as_view(),
        name="api-project-invites",
    ),
]
