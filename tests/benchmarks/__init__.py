"""Tests of the ``benchmarks/`` scripts; :func:`bench_module` imports one as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def bench_module(script: str) -> ModuleType:
    """``benchmarks/<script>`` loaded as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), BENCH / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module
