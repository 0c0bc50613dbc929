"""The import boundaries of ARCHITECTURE.md, checked on the source.

- ``labeling`` never imports ``rlhf``.
- ``rlhf`` reaches into ``labeling`` only through its services, selectors, preferences (the
  one meaning of a preference), roles and models
  (models for foreign keys and types; every write goes through ``labeling.services``).
- ``rlhf.training`` imports no Django, no ``labeling`` and nothing else from ``rlhf``.
- The web process (URLconf, views, API, admin) never imports torch/transformers/trl/peft.
- No two modules of ``labeling``, ``rlhf`` and ``config`` import each other, directly or through
  others (function-level imports count: a lazy import only hides a cycle).
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
            "labeling.reliability",
            "labeling.roles",
            "labeling.models",
            "labeling.safeinput",  # the input limits every entry point shares
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


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(packages: tuple[str, ...], root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the project modules it imports anywhere in its body (migrations left out)."""
    files = {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        edges = set()
        for target in targets:
            while target and target not in files:  # `from rlhf import runs` names a module
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other (strongly connected components > 1)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            group = [stack.pop()]
            while group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return sorted(groups)


def test_no_import_cycles() -> None:
    graph = import_graph(("labeling", "rlhf", "config"))
    assert {"rlhf.runner", "rlhf.runs", "rlhf.tasks", "labeling.services"} <= graph.keys()
    assert "rlhf.runner" in graph["rlhf.tasks"]  # the task bodies call the runner
    assert import_cycles(graph) == []


def test_cycle_checker_sees_a_lazy_import_cycle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from pkg.a import thing\n")
    graph = import_graph(("pkg",), root=tmp_path)
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


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


def test_reliability_fits_leave_the_ml_libraries_out() -> None:
    """crowd-kit's package ``__init__`` imports its text and embedding aggregators: fitting
    Dawid-Skene and MACE the way the web process does (``labeling.reliability``) must still
    leave torch, transformers & co. out of ``sys.modules``."""
    script = """
import json, sys
import django
django.setup()
from labeling import reliability
votes = [(c, w, "ab"[(c + (w == 2) * c // 2) % 2]) for c in range(30) for w in range(3)]
fitted = {m: reliability.scores(votes, m) for m in reliability.MODELS}
assert all(len(s) == 3 for s in fitted.values()), fitted
assert "crowdkit.aggregation" in sys.modules  # the fit did load crowd-kit
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ML_LIBRARIES)))
""".replace("ML_LIBRARIES", repr((*ML_LIBRARIES, "sentence_transformers", "datasets")))
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
