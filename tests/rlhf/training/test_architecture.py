"""rlhf.training imports no Django, no labeling, no rlhf.models."""

from __future__ import annotations

import ast
from pathlib import Path

import rlhf.training

FORBIDDEN = ("django", "labeling", "rlhf.models", "rlhf.runner", "rest_framework")


def test_no_forbidden_imports() -> None:
    package = Path(rlhf.training.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN or n in FORBIDDEN
            ]
            offenders += [
                f"{path.name}: {n}" for n in names if any(n.startswith(f + ".") for f in FORBIDDEN)
            ]
    assert offenders == []
