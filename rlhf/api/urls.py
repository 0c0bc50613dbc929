"""URL patterns of the tuning API under /api/v1/ (rounds and checkpoints)."""

from django.urls import URLPattern, URLResolver, path

from rlhf.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "projects/<id:project_id>/rounds/",
        views.ProjectRoundsView.as_view(),
        name="api-project-rounds",
    ),
    path("rounds/<id:round_id>/", views.RoundDetailView.as_view(), name="api-round"),
    path("rounds/<id:round_id>/rows/", views.RoundRowsView.as_view(), name="api-round-rows"),
    path("rounds/<id:round_id>/cancel/", views.RoundCancelView.as_view(), name="api-round-cancel"),
    path("rounds/<id:round_id>/retry/", views.RoundRetryView.as_view(), name="api-round-retry"),
    path(
        "projects/<id:project_id>/checkpoints/",
        views.ProjectCheckpointsView.as_view(),
        name="api-project-checkpoints",
    ),
    path(
        "projects/<id:project_id>/leaderboard/",
        views.ProjectLeaderboardView.as_view(),
        name="api-project-leaderboard",
    ),
    path(
        "projects/<id:project_id>/model/",
        views.ProjectModelView.as_view(),
        name="api-project-model",
    ),
    path(
        "checkpoints/<id:checkpoint_id>/promote/",
        views.CheckpointPromoteView.as_view(),
        name="api-checkpoint-promote",
    ),
    path(
        "checkpoints/<id:checkpoint_id>/generate/",
        views.CheckpointGenerateView.as_view(),
        name="api-checkpoint-generate",
    ),
    path("jobs/<str:job_id>/", views.JobView.as_view(), name="api-job"),
    path(
        "checkpoints/<id:checkpoint_id>/samples/",
        views.CheckpointSamplesView.as_view(),
        name="api-checkpoint-samples",
    ),
    path(
        "checkpoints/<id:checkpoint_id>/human-eval/",
        views.CheckpointHumanEvalView.as_view(),
        name="api-checkpoint-human-eval",
    ),
]
