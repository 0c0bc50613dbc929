"""Supervising one child process: events streamed, result and errors, cancel, process groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from rlhf import supervision
from rlhf.supervision import Progress, supervise


@pytest.fixture(autouse=True)
def quick(settings: Any) -> None:
    settings.PAIRWISE_HEARTBEAT_S = 0.05
    settings.PAIRWISE_PROGRESS_FLUSH_S = 0.05
    settings.PAIRWISE_CANCEL_GRACE_S = 2


def child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_events_are_streamed_and_the_result_kept(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    progress = Progress(
        None, phase="reward", history=[], listener=lambda p, e: seen.append((p, e.get("event", "")))
    )
    outcome = supervise(
        child("""
            import json
            for step in (1, 2):
                print(json.dumps({"event": "progress", "step": step, "total": 2, "loss": 1 / step}))
            print("not json")
            print(json.dumps({"event": "result", "result": {"ok": True}}))
        """),
        workdir=tmp_path,
        progress=progress,
        should_cancel=lambda: False,
    )
    assert outcome.ok and outcome.result == {"ok": True} and not outcome.cancelled
    assert [(p["step"], p["loss"]) for p in progress.history] == [(1, 1.0), (2, 0.5)]
    assert progress.state["step"] == 2 and progress.state["phase"] == "reward"
    assert outcome.log == ["not json"]
    assert seen == [("reward", e) for e in ("progress", "progress", "", "result")]


def test_a_failing_child_reports_its_stderr_tail(tmp_path: Path) -> None:
    outcome = supervise(
        child("""
            import json, sys
            print(json.dumps({"event": "result", "result": {"half": True}}))
            sys.stderr.write("Traceback...\\nValueError: bad spec\\n")
            sys.exit(3)
        """),
        workdir=tmp_path,
        progress=Progress(None, phase="dpo", history=[]),
        should_cancel=lambda: False,
    )
    assert outcome.returncode == 3 and not outcome.ok
    assert outcome.result is None  # a non-zero exit discards a reported result
    assert outcome.error.endswith("ValueError: bad spec")
    assert (tmp_path / "dpo.stderr.log").is_file()


def test_cancel_sends_sigterm_to_the_group(tmp_path: Path) -> None:
    started: list[int] = []
    outcome = supervise(
        child("""
            import time
            while True:
                time.sleep(0.05)
        """),
        workdir=tmp_path,
        progress=Progress(None, phase="online", history=[]),
        should_cancel=lambda: bool(started),
        on_start=started.append,
    )
    assert outcome.cancelled and not outcome.ok
    assert outcome.returncode == -signal.SIGTERM
    assert os.getpgid(os.getpid()) != started[0]  # the child led its own group


def test_signal_group_leaves_a_gone_group_alone() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    gone.wait()
    supervision.signal_group(gone.pid, signal.SIGKILL)  # no error


def test_sigterm_stops_children_turns_sigterm_into_system_exit() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, supervision.sigterm_stops_children():
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_group_kill_returns_once_the_group_stopped_writing(tmp_path: Path) -> None:
    out = tmp_path / "partial.txt"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "with open(sys.argv[1], 'a') as f:\n"
            "    while True:\n"
            "        f.write('x'); f.flush(); time.sleep(0.002)\n",
            str(out),
        ],
        start_new_session=True,
    )
    try:
        while not out.exists() or out.stat().st_size < 10:
            time.sleep(0.01)
        supervision.group_kill(writer.pid)
        size = out.stat().st_size
        time.sleep(0.2)
        assert out.stat().st_size == size  # nothing written after it returned
        assert not supervision._running(writer.pid)
    finally:
        writer.kill()
        writer.wait()
