"""Progress events (JSON lines on stdout), cancellation on SIGTERM and the trainer callback.

A step function receives an :class:`Events` object. In library use it is silent; the CLI builds
one that writes the protocol lines (see ``specs`` docstring) to the original stdout. Only the
main process (RANK 0) writes, so the protocol survives ``accelerate launch``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Mapping
from types import FrameType
from typing import IO, Any

from transformers import (
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)


class Cancelled(Exception):
    """Raised when a stop was requested (SIGTERM); outputs are removed before it propagates."""


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class Events:
    """Where a step reports progress and asks whether it should stop."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self._stop_requested = False
        self._is_main = int(os.environ.get("RANK", "0")) == 0

    # ---------------------------------------------------------------- emission
    def emit(self, event: Mapping[str, Any]) -> None:
        """Write one JSON object as one line (main process only)."""
        if self._stream is None or not self._is_main:
            return
        self._stream.write(json.dumps(event, allow_nan=False) + "\n")
        self._stream.flush()

    def log(self, message: str) -> None:
        self.emit({"event": "log", "message": message})

    def progress(
        self,
        step: int,
        total: int,
        *,
        loss: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        eta_s: float | None = None,
    ) -> None:
        clean = {k: _finite(v) for k, v in sorted((metrics or {}).items()) if isinstance(v, int | float)}
        self.emit(
            {
                "event": "progress",
                "step": int(step),
                "total": int(total),
                "loss": _finite(loss),
                "metrics": clean,
                "eta_s": _finite(eta_s),
            }
        )

    # ---------------------------------------------------------------- cancellation
    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def request_stop(self) -> None:
        self._stop_requested = True

    def check(self) -> None:
        """Raise :class:`Cancelled` when a stop was requested (call between phases)."""
        if self._stop_requested:
            raise Cancelled()

    def install_sigterm_handler(self) -> None:
        """SIGTERM sets the stop flag; the running step stops at its next check or training step."""

        def _handler(signum: int, frame: FrameType | None) -> None:
            self.request_stop()

        signal.signal(signal.SIGTERM, _handler)


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
            self._last_loss = _finite(logs["loss"])
        self._last_metrics.update({k: v for k, v in logs.items() if k != "loss" and isinstance(v, int | float)})

    def _emit(self, state: TrainerState, now: float) -> None:
        self._last_emit = now
        step, total = state.global_step, state.max_steps
        elapsed = now - self._start
        eta = elapsed / step * max(total - step, 0) if step > 0 else None
        loss = self._last_loss
        if loss is None and state.log_history and "loss" in state.log_history[-1]:
            loss = _finite(state.log_history[-1]["loss"])
        self.events.progress(step, total, loss=loss, metrics=self._last_metrics, eta_s=eta)


def redirect_stdout_to_stderr() -> IO[str]:
    """Point fd 1 (and ``sys.stdout``) at stderr; return a stream on the original stdout.

    Libraries print to stdout (tqdm, warnings, C extensions); after this call only the returned
    stream reaches the real stdout, which then carries protocol lines only.
    """
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "w", buffering=1, encoding="utf-8")


def quiet_trainer(trainer: Any) -> None:
    """Drop the callbacks that print log dicts or bars (progress goes through ProgressCallback)."""
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_callback import ProgressCallback as BarCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(BarCallback)
