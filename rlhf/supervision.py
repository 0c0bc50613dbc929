"""Supervising one engine child process: its own process group, streamed progress, heartbeat,
cancel (SIGTERM to the group, SIGKILL after a grace period), and what it ended with.

The runner decides what to run and records the results; this module only runs a command to its
end. :class:`Progress` throttles the child's JSON progress lines into the run row (and writes
the heartbeat). Nothing here imports the training engine.

Settings (all optional): ``PAIRWISE_HEARTBEAT_S`` (5), ``PAIRWISE_PROGRESS_FLUSH_S`` (1),
``PAIRWISE_CANCEL_GRACE_S`` (20).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from rlhf.models import TrainingRun

Listener = Callable[[str, dict[str, Any]], None]  # (phase, event): terminal progress bars
LOG_TAIL_LINES = 60
HISTORY_MAX_POINTS = 600


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(settings.BASE_DIR))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Outcome:
    """How one engine invocation ended."""

    returncode: int
    cpu_s: float = 0.0
    result: dict[str, Any] | None = None
    error: str = ""
    cancelled: bool = False
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.result is not None


class Progress:
    """What the child reported so far, flushed into the run row at most once per interval."""

    def __init__(
        self,
        run_id: int | None,
        *,
        phase: str,
        history: list[dict[str, Any]],
        listener: Listener | None = None,
        phase_index: int = 0,
        phase_count: int = 1,
    ) -> None:
        self.run_id = run_id
        self.phase = phase
        # Where this engine call stands among the step's calls (``TrainingRun.percent``).
        self.phase_place = {"phase_index": phase_index, "phase_count": phase_count}
        self.listener = listener
        self.history = history
        self.state: dict[str, Any] = {"phase": phase}
        self.log: list[str] = []
        self.dirty = False

    def on_event(self, event: dict[str, Any]) -> None:
        if self.listener is not None:
            self.listener(self.phase, event)
        kind = event.get("event")
        if kind == "progress":
            self.state = {
                "phase": self.phase,
                "step": event.get("step"),
                "total": event.get("total"),
                "eta_s": event.get("eta_s"),
                "loss": event.get("loss"),
                **self.phase_place,
            }
            point = {"phase": self.phase, "step": event.get("step"), "loss": event.get("loss")}
            point.update(event.get("metrics") or {})
            self.history.append(point)
            if len(self.history) > HISTORY_MAX_POINTS:
                # Keep the curve's shape: thin the older half.
                half = len(self.history) // 2
                self.history[:half] = self.history[:half:2]
            self.dirty = True
        elif kind == "log":
            self.log.append(str(event.get("message", "")))
            self.dirty = True

    def flush(self, *, heartbeat: bool = True, existing_log: str = "") -> None:
        if self.run_id is None:
            return
        fields: dict[str, Any] = {}
        if heartbeat:
            fields["heartbeat_at"] = timezone.now()
        if self.dirty:
            lines = (existing_log.splitlines() if existing_log else []) + self.log
            fields.update(
                progress=self.state,
                metrics_history=self.history,
                log_tail="\n".join(lines[-LOG_TAIL_LINES:]),
            )
            self.dirty = False
        if fields:
            TrainingRun.objects.filter(pk=self.run_id).update(**fields)


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished (waited-for) children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(usage.ru_utime + usage.ru_stime)


def _reader(stream: Iterable[str], lines: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            lines.put(line)
    finally:
        lines.put(None)


def signal_group(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group led by ``pid`` (a step's child and everything it
    started); a group that is gone or not ours is left alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: assume it runs until kill says otherwise
    return state != "Z"


def group_kill(pid: int, *, wait_s: float = 5.0) -> None:
    """SIGKILL the process group led by ``pid`` and wait (at most ``wait_s``) until its leader
    has stopped, so nothing it was writing is written after the caller cleans up."""
    signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def supervise(
    command: list[str],
    *,
    workdir: Path,
    progress: Progress,
    should_cancel: Callable[[], bool],
    on_start: Callable[[int], None] = lambda pid: None,
) -> Outcome:
    """Run one engine invocation to its end, streaming its events; cancel on request."""
    heartbeat_s = float(_setting("PAIRWISE_HEARTBEAT_S", 5))
    flush_s = float(_setting("PAIRWISE_PROGRESS_FLUSH_S", 1))
    grace_s = float(_setting("PAIRWISE_CANCEL_GRACE_S", 20))
    stderr_path = workdir / f"{progress.phase}.stderr.log"
    existing_log = ""
    if progress.run_id is not None:
        existing_log = (
            TrainingRun.objects.filter(pk=progress.run_id)
            .values_list("log_tail", flat=True)
            .first()
            or ""
        )
    cpu_before = _children_cpu_s()
    with open(stderr_path, "w", encoding="utf-8") as stderr:
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            cwd=str(settings.BASE_DIR),
            env=child_env(),
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        on_start(child.pid)
        lines: queue.Queue[str | None] = queue.Queue()
        assert child.stdout is not None
        threading.Thread(target=_reader, args=(child.stdout, lines), daemon=True).start()
        outcome = Outcome(returncode=-1)
        last_flush = last_beat = time.monotonic()
        term_sent_at: float | None = None
        killed = False
        try:
            done = False
            while not done:
                try:
                    line = lines.get(timeout=0.25)
                except queue.Empty:
                    line = ""
                if line is None:
                    done = True
                elif line.strip():
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        progress.log.append(line.rstrip()[:500])
                        event = {}
                    progress.on_event(event)
                    kind = event.get("event")
                    if kind == "result":
                        outcome.result = event.get("result")
                    elif kind == "error":
                        outcome.error = str(event.get("message", "failed"))
                    elif kind == "cancelled":
                        outcome.cancelled = True
                now = time.monotonic()
                if now - last_beat >= heartbeat_s or (
                    progress.dirty and now - last_flush >= flush_s
                ):
                    progress.flush(existing_log=existing_log)
                    last_flush = last_beat = now
                    if term_sent_at is None and should_cancel():
                        outcome.cancelled = True
                        term_sent_at = now
                        signal_group(child.pid, signal.SIGTERM)
                if term_sent_at is not None and not killed and now - term_sent_at >= grace_s:
                    killed = True
                    signal_group(child.pid, signal.SIGKILL)
            outcome.returncode = child.wait()
        except BaseException:
            # The worker itself is stopping: take the child down with it.
            signal_group(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                signal_group(child.pid, signal.SIGKILL)
            raise
        finally:
            # Leftovers of the group (e.g. accelerate ranks) never outlive the step.
            signal_group(child.pid, signal.SIGKILL)
    progress.flush(existing_log=existing_log)
    outcome.cpu_s = max(0.0, _children_cpu_s() - cpu_before)
    if outcome.returncode == 143 or outcome.returncode == -signal.SIGTERM:
        outcome.cancelled = True
    if outcome.returncode != 0 and not outcome.error:
        tail = stderr_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        outcome.error = "\n".join(tail[-8:]) or f"exit code {outcome.returncode}"
    if outcome.returncode != 0:
        outcome.result = None
    outcome.log = progress.log
    return outcome


# --- commands that supervise a step in their own process --------------------------------------


@contextlib.contextmanager
def sigterm_stops_children() -> Iterator[None]:
    """In a command: SIGTERM raises SystemExit, so the step being supervised is stopped with it
    (its own process group would outlive a plain SIGTERM death). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
