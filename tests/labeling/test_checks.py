"""The deployment check: with DEBUG=0's manifest storage and no collected manifest, ``check
--deploy`` fails (every page would answer 500); once collected, it passes."""

from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from django.test import override_settings

from labeling.checks import static_manifest_check

MANIFEST_STORAGE = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def test_a_missing_static_manifest_is_a_deploy_error(tmp_path: Path) -> None:
    with override_settings(STORAGES=MANIFEST_STORAGE, STATIC_ROOT=str(tmp_path / "static")):
        errors = static_manifest_check()
        assert [error.id for error in errors] == ["pairwise.E001"]
        assert "collectstatic" in (errors[0].hint or "")
        call_command("collectstatic", interactive=False, verbosity=0)
        assert static_manifest_check() == []


def test_plain_static_storage_needs_no_manifest(tmp_path: Path) -> None:
    with override_settings(STATIC_ROOT=str(tmp_path / "static")):  # test settings: plain storage
        assert static_manifest_check() == []
