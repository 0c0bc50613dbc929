"""Progress events (JSON lines on stdout) and cancellation on SIGTERM.

A step function receives an :class:`Events` object. In library use it is silent; the CLI builds
one that writes the protocol lines (see ``specs`` docstring) to the original stdout. Only the
main process (RANK 0) writes, so the protocol survives ``accelerate launch``. No torch or
transformers here: the CLI answers a bad spec before paying for those imports
(the trainer callback lives in :mod:`rlhf.training.callbacks`).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from collections.abc import Mapping
from types import FrameType
from typing import IO, Any


class Cancelled(Exception):
    """Raised when a stop was requested (SIGTERM); outputs are removed before it propagates."""


def finite(value: Any) -> float | None:
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
        self._part, self._parts = 0, 1

    def part(self, index: int, count: int) -> None:
        """Report the next trainings as part ``index`` of ``count`` equal ones (a reward step's
        members): progress then counts over all parts, ``step x / count * total``, instead of
        starting again at 1 for each."""
        if not 0 <= index < count:
            raise ValueError(f"part {index} of {count}")
        self._part, self._parts = index, count

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
        clean = {
            k: finite(v) for k, v in sorted((metrics or {}).items()) if isinstance(v, int | float)
        }
        if self._parts > 1:  # the parts after this one take as long as this one
            later = (self._parts - 1 - self._part) * total
            if eta_s is not None and step < total:
                eta_s = eta_s + eta_s / (total - step) * later
            elif later:
                eta_s = None
            step, total = self._part * total + step, self._parts * total
        self.emit(
            {
                "event": "progress",
                "step": int(step),
                "total": int(total),
                "loss": finite(loss),
                "metrics": clean,
                "eta_s": finite(eta_s),
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
