"""The command line of benchmarks/reward_members.py on a tiny configuration (seconds): every
member and their average scored against the rule, one line per seed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "reward_members.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=REPO
    )


@pytest.mark.training
def test_each_member_and_their_average_are_scored_per_seed() -> None:
    done = _run("--rule", "correct_polite", "--labels", "24", "--held-out-prompts", "24",
                "--members", "2", "--seeds", "2", "--steps", "2", "--max-new-tokens", "8",
                "--noise", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if re.match(r"^ +\d+ \| ", line)]
    assert [line.split("|")[0].strip() for line in lines] == ["0", "1"]
    for line in lines:
        _, rows, members, mean, average = (cell.strip() for cell in line.split("|"))
        accuracies = [float(a) for a in members.split()]
        assert len(accuracies) == 2 and all(0.0 <= a <= 1.0 for a in accuracies)
        assert float(mean) == pytest.approx(sum(accuracies) / 2, abs=1e-3)
        assert 0.0 <= float(average) <= 1.0 and int(rows) > 0
    assert "members' spread (best - worst)" in done.stdout


def test_bad_arguments_are_refused_naming_the_option() -> None:
    done = _run("--members", "1")
    assert done.returncode == 2 and "--members" in done.stderr
    done = _run("--labels", "0")
    assert done.returncode == 2 and "--labels" in done.stderr
