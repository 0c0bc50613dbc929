"""Deployment checks (``manage.py check --deploy``): what would make every page answer 500."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.checks import Error, Tags, register
from django.core.files.storage import storages


@register(Tags.staticfiles, deploy=True)
def static_manifest_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """With a manifest storage (DEBUG=0), every ``{% static %}`` tag reads the manifest that
    ``collectstatic`` writes; without it every page is a 500. ``manage.py serve`` collects first."""
    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin):
        return []
    if storage.exists(storage.manifest_name):
        return []
    return [
        Error(
            f"the static files manifest {storage.path(storage.manifest_name)} is missing: with "
            f"DEBUG=0 every page would answer 500",
            hint="run `python manage.py collectstatic --noinput` (manage.py serve does it) "
            f"into STATIC_ROOT ({settings.STATIC_ROOT})",
            id="pairwise.E001",
        )
    ]
