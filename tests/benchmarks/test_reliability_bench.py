"""The command line of benchmarks/reliability.py (and the synthetic project of
benchmarks/export.py it builds on) on a tiny project: it fills the database through raw inserts,
so a new non-null column breaks it silently unless something runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "reliability.py"


def test_tiny_run_prints_fits_stats_and_every_export() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--judgments", "400"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "fit dawid_skene" in out and "fit mace" in out
    assert "warm/cold" in out
    for weights in ("none", "dawid_skene", "mace"):
        assert f"export annotator_weights={weights}" in out
