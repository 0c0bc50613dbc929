"""URL patterns of the dataset interchange pages and API endpoints."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
