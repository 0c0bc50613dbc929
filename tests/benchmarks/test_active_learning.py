"""The command line of benchmarks/active_learning.py, on a tiny configuration (seconds): it runs
every arm on the same seed, stops an arm at the target, and prints the table and the ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "active_learning.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


@pytest.mark.training
def test_tiny_run_prints_labels_to_target_per_arm_and_the_ratio() -> None:
    done = _run("--seeds", "1", "--pool-prompts", "16", "--held-out-prompts", "16",
                "--batch", "6", "--max-labels", "12", "--steps", "1", "--max-new-tokens", "8",
                "--target", "0.0", "--arms", "random,uncertainty")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "labels to held-out accuracy >= 0.0" in out
    # accuracy >= 0 holds after the first batch that yields a training row
    rows = [line for line in out.splitlines() if line.startswith("   0 |")]
    assert len(rows) == 1
    random_labels, uncertainty_labels = (int(cell) for cell in rows[0].split("|")[1:])
    assert random_labels == uncertainty_labels <= 12  # same seed: the same first batch
    assert "uncertainty/random 1.00" in out


def test_bad_arguments_are_refused_naming_the_option() -> None:
    done = _run("--arms", "random,greedy")
    assert done.returncode == 2 and "--arms" in done.stderr
    done = _run("--batch", "0")
    assert done.returncode == 2 and "--batch" in done.stderr
