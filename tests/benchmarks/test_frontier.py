"""benchmarks/frontier.py: best-of-k against one sample on hand-made scores, and a tiny run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks import bench_module

REPO = Path(__file__).resolve().parents[2]


def test_best_of_k_counts_wins_and_half_ties() -> None:
    module = bench_module("frontier.py")
    # pool [0, 1], opponents [0, 0]: best of 2 is always 1 and wins; best of 1 wins half the
    # draws and ties the rest (0.5 * 0.5 + 0.5 * 1)
    assert module.best_of_k_win_rate([[0.0, 1.0, 0.0, 0.0]], k=2) == 1.0
    assert module.best_of_k_win_rate([[0.0, 1.0, 0.0, 0.0]], k=1, draws=4000) == pytest.approx(
        0.75, abs=0.03
    )
    assert module.best_of_k_win_rate([[1.0, 1.0, 1.0, 1.0]], k=2) == 0.5  # all ties
    assert module.best_of_k_win_rate([[0.0, 0.0, 1.0, 1.0]], k=2) == 0.0
    with pytest.raises(ValueError, match="best of 4 needs at least 8 samples"):
        module.best_of_k_win_rate([[0.0, 1.0, 0.0, 0.0]], k=4)


@pytest.mark.training
def test_a_tiny_run_prints_every_rule_and_k() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "frontier.py"), "--samples", "8",
         "--prompts", "3", "--max-new-tokens", "8"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "k=1 0.00, k=4 0.64" in lines[0] and "6 held-out prompts x 8 samples" in lines[0]
    for rule in ("polite", "correct_polite", "concise", "formatted"):
        (row,) = [line for line in lines if line.startswith(f"{rule} ")]
        cells = [float(cell) for cell in row.split("|")[1:]]
        assert len(cells) == 2 and all(0.0 <= cell <= 100.0 for cell in cells)
