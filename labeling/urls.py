"""URL patterns of the labeling pages (no namespace: ``LOGIN_REDIRECT_URL`` names ``home``)."""

from django.urls import URLPattern, URLResolver, path

from labeling import depth_views, review_views, token_views, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("projects/", views.project_list, name="project_list"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<id:user_id>/revoke/", token_views.token_revoke, name="token_revoke"),
    path("projects/<id:project_id>/", views.project_detail, name="project_detail"),
    path("projects/<id:project_id>/queue-order/", views.queue_order_set, name="queue_order_set"),
    path("projects/<id:project_id>/label/", views.label, name="label"),
    path("projects/<id:project_id>/label/skip/", views.label_skip, name="label_skip"),
    path("projects/<id:project_id>/label/undo/", views.label_undo, name="label_undo"),
    path("projects/<id:project_id>/history/", views.history, name="history"),
    path("projects/<id:project_id>/gold/", views.gold_page, name="gold"),
    path(
        "projects/<id:project_id>/gold/<id:comparison_id>/",
        views.gold_mark,
        name="gold_mark",
    ),
    # --- review, judgment edits, people (helper: review) ---
    path("projects/<id:project_id>/review/", review_views.review_list, name="review"),
    path(
        "projects/<id:project_id>/review/<id:comparison_id>/",
        review_views.review_detail,
        name="review_detail",
    ),
    path(
        "projects/<id:project_id>/review/<id:comparison_id>/comments/",
        review_views.review_comment,
        name="review_comment",
    ),
    path(
        "projects/<id:project_id>/review/<id:comparison_id>/adjudication/",
        review_views.review_adjudicate,
        name="review_adjudicate",
    ),
    path(
        "projects/<id:project_id>/history/<id:judgment_id>/edit/",
        review_views.judgment_edit,
        name="judgment_edit",
    ),
    path("projects/<id:project_id>/people/", review_views.people, name="people"),
    path(
        "projects/<id:project_id>/people/remove/",
        review_views.people_remove,
        name="people_remove",
    ),
    path(
        "projects/<id:project_id>/people/invites/",
        review_views.invite_create,
        name="invite_create",
    ),
    path(
        "projects/<id:project_id>/people/invites/<id:invite_id>/revoke/",
        review_views.invite_revoke,
        name="invite_revoke",
    ),
    path("invites/<str:token>/", review_views.invite_accept, name="invite_accept"),
    # --- rank: labeling depth (issue 13) ---
    path("projects/<id:project_id>/rank/", depth_views.rank, name="rank"),
    path("projects/<id:project_id>/rank/skip/", depth_views.rank_skip, name="rank_skip"),
    path("projects/<id:project_id>/rank/undo/", depth_views.rank_undo, name="rank_undo"),
    path("projects/<id:project_id>/onboarding/", depth_views.onboarding_page, name="onboarding"),
    path(
        "projects/<id:project_id>/onboarding/acknowledge/",
        depth_views.onboarding_acknowledge,
        name="onboarding_acknowledge",
    ),
    path(
        "projects/<id:project_id>/onboarding/answer/",
        depth_views.onboarding_answer,
        name="onboarding_answer",
    ),
    path(
        "projects/<id:project_id>/labeling-settings/",
        depth_views.depth_settings,
        name="depth_settings",
    ),
    # --- end rank ---
]
