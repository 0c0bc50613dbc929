"""URL patterns of the tuning pages (admins): rounds, one round, checkpoints."""

from django.urls import URLPattern, URLResolver, path

from rlhf import views

app_name = "rlhf"

urlpatterns: list[URLPattern | URLResolver] = [
    path("projects/<int:project_id>/rounds/", views.project_rounds, name="project_rounds"),
    path("rounds/<int:round_id>/", views.round_detail, name="round_detail"),
    path("rounds/<int:round_id>/cancel/", views.round_cancel, name="round_cancel"),
    path("rounds/<int:round_id>/retry/", views.round_retry, name="round_retry"),
    path(
        "projects/<int:project_id>/checkpoints/",
        views.project_checkpoints,
        name="project_checkpoints",
    ),
    path("projects/<int:project_id>/model/", views.project_model, name="project_model"),
    path(
        "checkpoints/<int:checkpoint_id>/promote/",
        views.checkpoint_promote,
        name="checkpoint_promote",
    ),
    path(
        "checkpoints/<int:checkpoint_id>/human-eval/",
        views.checkpoint_human_eval,
        name="checkpoint_human_eval",
    ),
]
