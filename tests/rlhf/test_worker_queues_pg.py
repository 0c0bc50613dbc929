"""Two job workers on two queues sharing one PostgreSQL database (docs/deploy.md): a CPU host's
worker on ``default`` and a GPU host's on ``gpu``. With ``PAIRWISE_STEP_QUEUES=reward=default,
evaluate=default`` a round splits across them: the CPU worker trains the reward model and
evaluates, the GPU worker trains the policy and generates; the round succeeds, its checkpoints
in the shared data directory.

Real ``db_worker`` processes with the fake engine; runs when the test database is PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_tasks_db.models import DBTaskResult

from rlhf.models import Round, TrainingRun
from tests.serving import ROOT, manage

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: set DATABASE_URL=postgres://…",
    ),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

SETUP = """
from rlhf.demo import demo_project_create
from rlhf.simulate import annotators_ensure, judge_in_process
from rlhf import services
project = demo_project_create(name="split", train_prompts=4, held_out_prompts=1, annotators=()).project
users = [u for u, _ in annotators_ensure(project, 1)]
judge_in_process(project=project, annotators=users, rule="correct_polite", noise=0.0)
print(services.round_launch(project=project, method="dpo").pk)
"""


def _database_url() -> str:
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def _worker(env: dict[str, str], queue: str, worker_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--queue-name",
            queue,
            "--worker-id",
            worker_id,
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


def test_a_round_splits_across_a_cpu_and_a_gpu_worker(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.rlhf.worker_settings",
        "DATABASE_URL": _database_url(),
        "PAIRWISE_DATA_DIR": str(tmp_path / "shared"),  # both hosts mount it
        "SECRET_KEY": "test-worker-queues",
        "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "PAIRWISE_STEP_QUEUES": "reward=default,evaluate=default",
        "PAIRWISE_TASK_QUEUE": "gpu",
        "FAKE_STEPS": "2",
    }
    round_id = int(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    workers = [_worker(env, "default", "cpu-host"), _worker(env, "gpu", "gpu-host")]
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = Round.objects.get(pk=round_id).status
            if status in ("succeeded", "failed", "cancelled"):
                break
            assert all(worker.poll() is None for worker in workers), "a worker died"
            time.sleep(0.3)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)
    round_ = Round.objects.get(pk=round_id)
    assert round_.status == "succeeded", round_.error if hasattr(round_, "error") else round_

    executed: dict[str, tuple[str, list[str]]] = {}
    for result in DBTaskResult.objects.filter(task_path="rlhf.tasks.training_run_execute"):
        run = TrainingRun.objects.get(pk=result.args_kwargs["args"][0])
        executed[run.step] = (result.queue_name, result.worker_ids)
    assert executed == {
        "reward": ("default", ["cpu-host"]),
        "policy": ("gpu", ["gpu-host"]),
        "evaluate": ("default", ["cpu-host"]),
        "generate": ("gpu", ["gpu-host"]),
    }
    checkpoints = list((tmp_path / "shared" / "checkpoints").iterdir())
    assert len(checkpoints) >= 2  # the reward model (CPU host) and the policy (GPU host)
