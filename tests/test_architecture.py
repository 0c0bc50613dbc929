"""The import boundaries of ARCHITECTURE.md, checked on the source.

- ``labeling`` never imports ``rlhf``.
- ``rlhf`` reaches into ``labeling`` only through its services, selectors, preferences (the
  one meaning of a preference), roles and models
  (models for foreign keys and types; every write goes through ``labeling.services``).
- ``rlhf.training`` imports no Django, no ``labeling`` and nothing else from ``rlhf``.
- The web process (URLconf, views, API, admin) never imports torch/transformers/trl/peft.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ML_LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate")


def imported_modules(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Every module imported by each file below ``package`` (absolute names)."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(root))] = names
    return found


def offenders(
    package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = (), root: Path = ROOT
) -> list[str]:
    bad = []
    for path, names in imported_modules(package, root).items():
        for name in sorted(names):
            hit = any(name == f or name.startswith(f + ".") for f in forbidden)
            ok = any(name == a or name.startswith(a + ".") for a in allowed)
            if hit and not ok:
                bad.append(f"{path}: {name}")
    return bad


def test_labeling_never_imports_rlhf() -> None:
    assert offenders("labeling", ("rlhf",)) == []


def test_rlhf_uses_labeling_only_through_its_public_modules() -> None:
    bad = offenders(
        "rlhf",
        ("labeling",),
        allowed=(
            "labeling.services",
            "labeling.selectors",
            "labeling.preferences",
            "labeling.roles",
            "labeling.models",
        ),
    )
    assert bad == []


def test_training_imports_no_django_and_no_web_apps() -> None:
    bad = offenders(
        "rlhf/training",
        ("django", "rest_framework", "labeling", "rlhf"),
        allowed=("rlhf.training",),
    )
    assert bad == []


def test_checker_sees_violations(tmp_path: Path) -> None:
    """The checker itself must flag a forbidden import (guards against a vacuous pass)."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("from rlhf.models import Round\nimport django.db\n")
    assert offenders("pkg", ("rlhf", "django"), root=tmp_path) == [
        "pkg/mod.py: django.db",
        "pkg/mod.py: rlhf.models",
        "pkg/mod.py: rlhf.models.Round",
    ]


def test_web_process_never_imports_ml_libraries() -> None:
    """Load the WSGI app, resolve every URL pattern's view and the admin: no torch & co."""
    script = """
import json, sys
from config.wsgi import application
from django.urls import get_resolver
import django.contrib.admin
def walk(resolver):
    for p in resolver.url_patterns:
        if hasattr(p, "url_patterns"):
            walk(p)
        else:
            p.callback
walk(get_resolver())
from django.test import Client
client = Client()
client.get("/accounts/login/")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ML_LIBRARIES)))
""".replace("ML_LIBRARIES", repr(ML_LIBRARIES))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DJANGO_SETTINGS_MODULE": "config.test_settings", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
