"""The trainer callback that turns TRL/transformers training into progress events, and stops it on request."""

from __future__ import annotations

import time
from typing import Any

from transformers import (
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from rlhf.training.progress import Events, finite


class ProgressCallback(TrainerCallback):
    """Emits progress lines with an ETA and turns a stop request into ``should_training_stop``."""

    def __init__(self, events: Events, *, min_interval_s: float = 0.5) -> None:
        self.events = events
        self.min_interval_s = min_interval_s
        self._start = 0.0
        self._last_emit = 0.0
        self._last_loss: float | None = None
        self._last_metrics: dict[str, float] = {}

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._start = time.monotonic()
        self.events.progress(0, state.max_steps, eta_s=None)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.events.stop_requested:
            control.should_training_stop = True
            return
        now = time.monotonic()
        if now - self._last_emit >= self.min_interval_s or state.global_step >= state.max_steps:
            self._emit(state, now)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        logs = logs or {}
        if "loss" in logs:
            self._last_loss = finite(logs["loss"])
        self._last_metrics.update(
            {k: v for k, v in logs.items() if k != "loss" and isinstance(v, int | float)}
        )

    def _emit(self, state: TrainerState, now: float) -> None:
        self._last_emit = now
        step, total = state.global_step, state.max_steps
        elapsed = now - self._start
        eta = elapsed / step * max(total - step, 0) if step > 0 else None
        loss = self._last_loss
        if loss is None and state.log_history and "loss" in state.log_history[-1]:
            loss = finite(state.log_history[-1]["loss"])
        self.events.progress(step, total, loss=loss, metrics=self._last_metrics, eta_s=eta)


def quiet_trainer(trainer: Any) -> None:
    """Drop the callbacks that print log dicts or bars (progress goes through ProgressCallback)."""
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_callback import ProgressCallback as BarCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(BarCallback)
