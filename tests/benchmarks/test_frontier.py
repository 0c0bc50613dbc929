"""benchmarks/frontier.py: best-of-k against one sample on hand-made scores, and a tiny run."""

from __future__ import annotations

import re
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


def test_knowledge_is_the_right_share_and_the_share_of_prompts_ever_right() -> None:
    module = bench_module("frontier.py")
    # 8 samples, 2 right (1 of 3 on the first prompt, 1 of 3 on the second), one prompt never
    right, known = module.knowledge([[True, False, False], [False, True, False], [False] * 2])
    assert right == pytest.approx(2 / 8) and known == pytest.approx(2 / 3)
    assert module.knowledge([]) == (pytest.approx(float("nan"), nan_ok=True),) * 2
    # the bound it gives: a policy right every time where the base is ever right wins
    # 0.5 + (p - q) / 2 on each prompt: 0.5 where the base is always right, 0.5 where never,
    # 0.75 where half the time
    right, known = module.knowledge([[True] * 4, [False] * 4, [True, True, False, False]])
    assert 0.5 + (known - right) / 2 == pytest.approx((0.5 + 0.5 + 0.75) / 3)


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
    for rule in ("correct", "polite", "correct_polite", "concise", "formatted"):
        for name in (rule, f"{rule}:unseen", f"{rule}:seen"):
            (row,) = [line for line in lines if line.startswith(f"{name} ")]
            cells = [float(cell) for cell in row.split("|")[1:]]
            assert len(cells) == 2 and all(0.0 <= cell <= 100.0 for cell in cells)
    for name in ("all", "all:unseen", "all:seen"):
        (row,) = [line for line in lines if line.startswith(f"{name} ")]
        right, known = (float(cell) for cell in row.split("|")[1:])
        assert 0.0 <= right <= known <= 100.0


def test_held_out_rows_tag_each_prompt_by_its_half() -> None:
    module = bench_module("frontier.py")
    toy, tags = module.held_out_rows("toy", 5)
    assert tags == ("unseen", "seen") and len(toy) == 10
    assert [r["prompt_id"] for r in toy[:5]] == [f"unseen-{i}" for i in range(5)]
    real, tags = module.held_out_rows("smollm2", 40)
    assert tags == ("facts", "arithmetic") and len(real) == 40
    for row in real:
        text = row["prompt"][-1]["content"]
        arithmetic = re.fullmatch(r"What is \d+ (plus|minus|times) \d+\?", text) is not None
        assert row["prompt_id"].startswith("arithmetic-" if arithmetic else "facts-"), row
    assert {r["prompt_id"].split("-")[0] for r in real} == {"facts", "arithmetic"}


def test_the_smollm2_preset_needs_its_models_dir(capsys: pytest.CaptureFixture[str]) -> None:
    module = bench_module("frontier.py")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--preset", "smollm2"])
    assert exit_info.value.code == 2
    assert "--preset smollm2 needs --models-dir" in capsys.readouterr().err
