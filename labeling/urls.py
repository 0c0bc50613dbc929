"""URL patterns of the labeling pages (no namespace: ``LOGIN_REDIRECT_URL`` names ``home``)."""

from django.urls import URLPattern, URLResolver, path

from labeling import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("projects/", views.project_list, name="project_list"),
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
]
