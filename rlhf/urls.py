"""URL patterns of the tuning pages (admins): rounds, one round, checkpoints."""

from django.urls import URLPattern, URLResolver, path

from rlhf import views

app_name = "rlhf"

urlpatterns: list[URLPattern | URLResolver] = [
    path("projects/<id:project_id>/rounds/", views.project_rounds, name="project_rounds"),
    path("rounds/<id:round_id>/", views.round_detail, name="round_detail"),
    path("rounds/<id:round_id>/cancel/", views.round_cancel, name="round_cancel"),
    path("rounds/<id:round_id>/retry/", views.round_retry, name="round_retry"),
    path(
        "projects/<id:project_id>/checkpoints/",
        views.project_checkpoints,
        name="project_checkpoints",
    ),
    path("projects/<id:project_id>/model/", views.project_model, name="project_model"),
    path(
        "checkpoints/<id:checkpoint_id>/promote/",
        views.checkpoint_promote,
        name="checkpoint_promote",
    ),
    path(
        "checkpoints/<id:checkpoint_id>/human-eval/",
        views.checkpoint_human_eval,
        name="checkpoint_human_eval",
    ),
]
