"""URL patterns of the labeling API under /api/v1/, plus the OpenAPI schema and its docs page."""

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView

from labeling.api import docs, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", docs.api_docs, name="api-docs"),
    path("projects/", views.ProjectListCreateView.as_view(), name="api-projects"),
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
]
