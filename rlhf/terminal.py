"""Terminal progress bars for the management commands (training steps and rounds)."""

from __future__ import annotations

from typing import Any, Protocol


class Stream(Protocol):
    def write(self, text: str) -> Any: ...

    def flush(self) -> Any: ...


def bar(done: float, total: float, width: int = 28) -> str:
    fraction = 0.0 if total <= 0 else max(0.0, min(1.0, done / total))
    filled = round(fraction * width)
    return "[" + "#" * filled + "-" * (width - filled) + f"] {fraction * 100:5.1f}%"


class StepBar:
    """One line that redraws itself (``\\r``) on a TTY and prints sparse lines otherwise."""

    def __init__(self, stream: Stream, label: str) -> None:
        self.stream = stream
        self.label = label
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_decile = -1

    def event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "progress":
            self.update(
                event.get("step") or 0,
                event.get("total") or 0,
                event.get("eta_s"),
                event.get("loss"),
            )
        elif event.get("event") == "log":
            self.message(str(event.get("message", "")))

    def update(
        self, step: int, total: int, eta_s: float | None = None, loss: float | None = None
    ) -> None:
        extra = f" {step}/{total}"
        if loss is not None:
            extra += f" loss {loss:.4f}"
        if eta_s is not None:
            extra += f" ETA {eta_s:.0f}s"
        line = f"{self.label:<10} {bar(step, total)}{extra}"
        if self.tty:
            self.stream.write("\r" + line.ljust(90))
            self.stream.flush()
            return
        decile = int(10 * step / total) if total else 0
        if decile != self._last_decile:
            self._last_decile = decile
            self.stream.write(line + "\n")

    def message(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 90 + "\r")
        self.stream.write(f"{self.label:<10} {text}\n")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


class RoundWatcher:
    """Draws a round's steps from the database: a bar for the running one, a line per finished one."""

    def __init__(self, stream: Stream, round_id: int) -> None:
        self.stream = stream
        self.round_id = round_id
        self.bars: dict[int, StepBar] = {}
        self.reported: set[int] = set()

    def tick(self) -> None:
        from rlhf.models import TrainingRun

        for run in TrainingRun.objects.filter(round_id=self.round_id).order_by("id"):
            if run.pk in self.reported:
                continue
            if run.status == "running":
                bar_ = self.bars.setdefault(run.pk, StepBar(self.stream, run.step))
                progress = run.progress or {}
                if progress.get("total"):
                    bar_.update(
                        int(progress.get("step") or 0),
                        int(progress["total"]),
                        progress.get("eta_s"),
                        progress.get("loss"),
                    )
            elif run.is_finished:
                self.reported.add(run.pk)
                if run.pk in self.bars:
                    self.bars.pop(run.pk).close()
                wall = f" in {run.wall_s:.1f}s" if run.wall_s is not None else ""
                reason = f": {run.error.splitlines()[-1]}" if run.error else ""
                self.stream.write(f"{run.step:<10} {run.status}{wall}{reason}\n")
