"""URL patterns of the dataset interchange pages and API endpoints (full paths: included at /)."""

from django.urls import URLPattern, URLResolver, path

from labeling.interchange import api, views

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "api/v1/projects/<id:project_id>/prompts/",
        api.PromptsImportView.as_view(),
        name="api-import-prompts",
    ),
    path(
        "api/v1/projects/<id:project_id>/responses/",
        api.ResponsesImportView.as_view(),
        name="api-import-responses",
    ),
    path(
        "api/v1/projects/<id:project_id>/preferences/",
        api.PreferencesImportView.as_view(),
        name="api-import-preferences",
    ),
    path(
        "api/v1/projects/<id:project_id>/export/",
        api.ExportView.as_view(),
        name="api-export",
    ),
    path("projects/<id:project_id>/upload/", views.upload, name="interchange-upload"),
    path("projects/<id:project_id>/export/", views.export, name="interchange-export"),
]
