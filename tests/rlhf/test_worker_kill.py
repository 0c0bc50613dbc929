"""A real ``db_worker`` killed with SIGKILL mid-round: when a worker starts again, the step's
watchdog task reaps it (run and round failed), no half-written checkpoint remains, the orphaned
training process is gone, and a relaunch succeeds.

Runs real processes against a file SQLite database (the test database lives in memory and cannot
be shared), with the fake engine so it takes seconds.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
from rlhf.demo import demo_project_create
from rlhf.simulate import annotators_ensure, judge_in_process
from rlhf import services
project = demo_project_create(name="kill", train_prompts=4, held_out_prompts=1, annotators=()).project
users = [u for u, _ in annotators_ensure(project, 1)]
judge_in_process(project=project, annotators=users, rule="correct_polite", noise=0.0)
print(services.round_launch(project=project, method="dpo").pk)
"""


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--queue-name",
            "*",
            "--interval",
            "0.1",
            "--no-startup-delay",
            "--no-reload",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_sigkilled_worker_is_reaped_and_the_round_relaunches(tmp_path: Path) -> None:
    db_path = tmp_path / "db.sqlite3"
    data = tmp_path / "data"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.rlhf.worker_settings",
        "DATABASE_URL": f"sqlite:///{db_path}",
        "PAIRWISE_DATA_DIR": str(data),
        "SECRET_KEY": "test-worker-kill",
        "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "FAKE_STEPS": "100000",
        "FAKE_STEP_S": "0.01",
        # A real step may be minutes from its next progress line when its worker dies; the fake
        # writes every 10 ms and would otherwise die of the broken pipe before the test looks.
        "FAKE_IGNORE_EPIPE": "1",
    }
    _manage(env, "migrate", "--noinput", "-v", "0")
    round_id = int(_manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    db = sqlite3.connect(db_path, timeout=20)

    def reward_run() -> tuple[Any, ...] | None:
        return db.execute(
            "SELECT id, status, pid, progress FROM rlhf_trainingrun "
            "WHERE round_id = ? AND step = 'reward' ORDER BY id DESC",
            (round_id,),
        ).fetchone()

    worker = _worker(env)
    try:
        run = _wait(
            lambda: (
                (r := reward_run()) and r[1] == "running" and r[2] and '"step": 2' in r[3] and r
            ),
            "the reward step to report progress",
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    run_id, _, child_pid, _ = run
    output = data / "checkpoints" / f"run-{run_id}"
    assert _alive(child_pid), "the training child outlives its worker (own process group)"
    assert list(output.parent.glob(f".{output.name}.tmp-*")), "a partial checkpoint is on disk"

    # A new worker starts: the dead step's watchdog task is due and reaps it.
    time.sleep(2.5)  # the heartbeat goes stale
    env = {**env, "FAKE_STEPS": "2"}
    worker = _worker(env)
    try:
        _wait(
            lambda: (
                db.execute(
                    "SELECT status FROM rlhf_trainingrun WHERE id = ?", (run_id,)
                ).fetchone()[0]
                == "failed"
            ),
            "the watchdog to reap the dead worker's step",
        )
        status, error = db.execute(
            "SELECT status, error FROM rlhf_trainingrun WHERE id = ?", (run_id,)
        ).fetchone()
        assert "no heartbeat" in error
        assert db.execute("SELECT status FROM rlhf_round WHERE id = ?", (round_id,)).fetchone() == (
            "failed",
        )
        _wait(lambda: not _alive(child_pid), "the orphaned training process to be killed", 10)
        # The reaper commits the failure, kills the group, waits for it, then removes the output:
        # the test can see the child gone a moment before the removal.
        _wait(
            lambda: not output.exists() and not list(output.parent.glob(f".{output.name}.*")),
            "the partial checkpoint to be removed",
            10,
        )
        assert db.execute(
            "SELECT count(*) FROM rlhf_checkpoint WHERE kind = 'reward'"
        ).fetchone() == (0,)

        _manage(
            env,
            "shell",
            "-c",
            f"from rlhf import services; from rlhf.models import Round; "
            f"services.round_retry(round=Round.objects.get(pk={round_id}))",
        )
        _wait(
            lambda: (
                db.execute("SELECT status FROM rlhf_round WHERE id = ?", (round_id,)).fetchone()[0]
                in ("succeeded", "failed")
            ),
            "the relaunched round to finish",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    status, error = db.execute(
        "SELECT status, error FROM rlhf_round WHERE id = ?", (round_id,)
    ).fetchone()
    assert status == "succeeded", error
    assert (
        db.execute(
            "SELECT count(*) FROM labeling_comparison WHERE batch LIKE 'round-1:%'"
        ).fetchone()[0]
        > 0
    )
    db.close()


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_sigterm_to_an_inline_command_stops_its_training_step(tmp_path: Path) -> None:
    db_path = tmp_path / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.rlhf.worker_settings",
        "DATABASE_URL": f"sqlite:///{db_path}",
        "PAIRWISE_DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "test-sigterm",
        # No worker: the command runs the steps itself (the launch's task row just waits).
        "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "FAKE_STEPS": "100000",
        "FAKE_STEP_S": "0.01",
    }
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(
        env, "shell", "-c", SETUP.replace("print(services.round_launch", "(services.round_launch")
    )
    db = sqlite3.connect(db_path, timeout=20)
    db.execute("DELETE FROM rlhf_round")  # the setup's own round; launch a fresh one below
    db.execute("DELETE FROM rlhf_trainingrun")
    db.commit()
    command = subprocess.Popen(
        [sys.executable, "manage.py", "launch_round", "kill", "--inline"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run = _wait(
            lambda: db.execute(
                "SELECT id, pid FROM rlhf_trainingrun WHERE status = 'running' AND pid IS NOT NULL"
            ).fetchone(),
            "the inline step to start",
        )
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=30) != 0
    finally:
        if command.poll() is None:
            command.kill()
    run_id, child_pid = run
    _wait(lambda: not _alive(child_pid), "the training child to stop with its command", 10)
    status, error = db.execute(
        "SELECT status, error FROM rlhf_trainingrun WHERE id = ?", (run_id,)
    ).fetchone()
    assert status == "failed" and "worker stopped" in error
    db.close()
