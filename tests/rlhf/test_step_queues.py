"""``PAIRWISE_STEP_QUEUES`` routes a round's steps to worker queues (the PostgreSQL test
``test_worker_queues_pg`` runs a round across two real workers)."""

from __future__ import annotations

from typing import Any

from rlhf import tasks


def test_named_steps_go_to_their_queue_the_others_to_the_task_queue(settings: Any) -> None:
    settings.TASKS = {
        "default": {"BACKEND": settings.TASKS["default"]["BACKEND"], "QUEUES": ["default", "gpu"]}
    }
    settings.PAIRWISE_TASK_QUEUE = ""
    settings.PAIRWISE_STEP_QUEUES = {"reward": "default", "evaluate": "default"}
    assert [
        tasks.step_queue_name(step) for step in ("reward", "policy", "evaluate", "generate")
    ] == [
        "default",
        "gpu",
        "default",
        "gpu",
    ]
    settings.PAIRWISE_STEP_QUEUES = {}
    assert tasks.step_queue_name("reward") == "gpu"
