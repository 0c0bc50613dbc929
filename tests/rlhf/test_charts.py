"""The round page's curves are plotted by step (the axis ends where the header's step / total
does), phases end to end; a step's bar runs once from 0 to 100 across its engine calls."""

from __future__ import annotations

from typing import Any

from rlhf.charts import curves_for_run
from rlhf.models import RunStatus, TrainingRun


def test_curves_are_plotted_by_step_not_by_index() -> None:
    # A thinned history: 20 points kept of a 32-step run.
    steps = [*range(1, 20, 2), *range(20, 33)][-20:]
    history = [{"phase": "policy", "step": s, "loss": 1 / s} for s in steps]
    (loss,) = curves_for_run(history)
    assert [x for x, _ in loss.points] == [float(s) for s in steps]
    assert "step 32</text>" in loss.svg


def test_phases_are_laid_end_to_end() -> None:
    history = [
        *({"phase": "generate-candidate", "step": s, "loss": 1.0 + s} for s in (1, 2, 3)),
        *({"phase": "generate-champion", "step": s, "loss": 2.0 + s} for s in (1, 2)),
    ]
    (loss,) = curves_for_run(history)
    assert [x for x, _ in loss.points] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_point_without_a_step_follows_the_one_before() -> None:
    history: list[dict[str, Any]] = [
        {"step": 4, "loss": 1.0},
        {"loss": 0.5},
        {"step": None, "loss": 0.25},
    ]
    (loss,) = curves_for_run(history)
    assert [x for x, _ in loss.points] == [4.0, 5.0, 6.0]


def _percent(progress: dict, status: str = RunStatus.RUNNING) -> int:
    return TrainingRun(status=status, progress=progress).percent


def test_the_bar_runs_once_across_a_steps_engine_calls() -> None:
    first = {"phase": "generate-candidate", "phase_index": 0, "phase_count": 2}
    second = {"phase": "generate-champion", "phase_index": 1, "phase_count": 2}
    seen = [
        _percent({**first, "step": 0, "total": 10}),
        _percent({**first, "step": 10, "total": 10}),
        _percent({**second, "step": 0, "total": 4}),
        _percent({**second, "step": 2, "total": 4}),
        _percent({**second, "step": 4, "total": 4}),
    ]
    assert seen == [0, 50, 50, 75, 100]
    assert seen == sorted(seen)  # never back to 0
    assert _percent({"step": 3, "total": 4}) == 75  # one engine call (older rows too)
    assert _percent({}, status=RunStatus.SUCCEEDED) == 100
