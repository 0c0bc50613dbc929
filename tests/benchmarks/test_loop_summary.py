"""``benchmarks/loop.py``'s ``--rules`` summary, on hand-made per-process figures (no training):
the rule win-rate with its interval per round, and the last round's gate and the champion each
process reported."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmarks import bench_module


def _row(number: int, rate: float, *, promoted_prev: bool = False, blocked: Any = ()) -> Any:
    return {"number": number, "rule_win_rate_vs_base": rate, "rule_pairs": 320,
            "promoted_prev": promoted_prev, "blocked": list(blocked), "reward_accuracy": 0.7,
            "reward_rule_agreement": 0.9, "kl_to_base": 2.5, "perplexity": 4.4,
            "perplexity_base": 2.6}  # fmt: skip


def test_the_summary_shows_the_gate_and_the_champion(capsys: pytest.CaptureFixture[str]) -> None:
    loop = bench_module("loop.py")
    summary = {
        "polite:default": [
            _row(1, 0.706),
            _row(2, 0.777, promoted_prev=True),
            {
                **_row(3, 0.805),
                "human_win_rate": 0.66,
                "human_interval": [0.59, 0.72],
                "human_vs": 2,
            },
        ],
        "formatted:default": [
            _row(1, 0.533),
            _row(2, 0.712),
            _row(3, 0.756, promoted_prev=True, blocked=["fluency_collapse"]),
        ],
        "concise:default": [],  # a process that printed no figures
    }
    champions = {"polite:default": 3, "formatted:default": 2}
    loop.print_summary(list(summary), summary, champions, rounds=3)
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    polite, formatted, concise = (
        lines["polite:default"],
        lines["formatted:default"],
        lines["concise:default"],
    )
    assert "70.6 (65-75)" in polite and "80.5 (76-84)" in polite
    # the last candidate's human win-rate judged after the loop, where it was (--decide)
    assert polite.split()[-6:] == ["open", "66.0", "(59-72)", "r2", "round", "3"]
    assert formatted.split()[-4:] == ["held", "—", "round", "2"]
    assert concise.split()[-3:] == ["—", "—", "—"]
