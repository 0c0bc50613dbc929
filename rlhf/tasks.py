"""Background jobs of the model side (django-tasks; ``python manage.py db_worker`` runs them),
and the ONLY place that enqueues them.

Tasks take ids only, are enqueued with ``transaction.on_commit`` and are safe to run twice (the
runner claims a run with a conditional update). Their bodies are a few lines that call the runner
or ``rlhf.runs`` and enqueue what comes next; neither of those imports this module, so there is
no import cycle. The runner never imports the training engine, so importing this module (the
web process does, to enqueue) stays cheap.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import TaskResult, default_task_backend, task
from django_tasks.exceptions import TaskResultDoesNotExist

from rlhf import runner, runs


def task_queue_name() -> str:
    """The queue of the model steps: ``PAIRWISE_TASK_QUEUE``, else ``gpu`` when the task backend
    has that queue (GPU hosts run ``db_worker --queue-name gpu``; ``make demo`` runs ``'*'``)."""
    configured = getattr(settings, "PAIRWISE_TASK_QUEUE", "")
    if configured:
        return str(configured)
    queues = settings.TASKS.get("default", {}).get("QUEUES", [])
    return "gpu" if "gpu" in queues else "default"


def watch_queue_name() -> str:
    """The watchdog runs on the default queue: any worker reaps a dead step."""
    queues = settings.TASKS.get("default", {}).get("QUEUES", [])
    return "default" if not queues or "default" in queues else task_queue_name()


# --- enqueueing (on commit) ----------------------------------------------------------------------


def training_run_enqueue(run_id: int) -> None:
    """Run step ``run_id`` on a worker once the current transaction commits."""
    execute = training_run_execute.using(queue_name=task_queue_name())
    transaction.on_commit(lambda: execute.enqueue(run_id))


def training_run_watch_enqueue(run_id: int) -> None:
    """Schedule the run's watchdog one stale period ahead (backends without deferral: none)."""
    watch = training_run_watch.using(queue_name=watch_queue_name())
    if not watch.get_backend().supports_defer:
        return
    run_after = timezone.now() + runs.heartbeat_stale_after()
    transaction.on_commit(lambda: watch.using(run_after=run_after).enqueue(run_id))


def checkpoint_generate_enqueue(request: dict[str, Any]) -> str | None:
    """Sample a checkpoint on a worker (``runner.checkpoint_generate``'s keyword arguments:
    plain values). Returns the job's id, which ``GET /api/v1/jobs/{id}/`` reads back, when the
    backend keeps jobs in the database (django-tasks-db): the job row is written now, inside the
    caller's transaction, so it commits or rolls back with the request, as on_commit would
    guarantee. Other backends enqueue on commit and no id is known (None)."""
    generate = checkpoint_generate.using(queue_name=task_queue_name())
    if _jobs_in_database(generate.get_backend()):
        return str(generate.enqueue(request).id)
    transaction.on_commit(lambda: generate.enqueue(request))
    return None


def _jobs_in_database(backend: Any) -> bool:
    return bool(backend.supports_get_result) and type(backend).__module__.startswith(
        "django_tasks_db"
    )


def job_get(job_id: str) -> TaskResult[Any]:
    """A job of this app's backend by id (raises ``TaskResultDoesNotExist``)."""
    backend = default_task_backend
    if not backend.supports_get_result:
        raise TaskResultDoesNotExist(job_id)
    return backend.get_result(job_id)


# --- the tasks -----------------------------------------------------------------------------------


@task()
def training_run_execute(run_id: int) -> str:
    """Run one step of a tuning round; when it succeeds, enqueue the round's next step.

    The watchdog is scheduled first: should this worker die mid-step, another one reaps it.
    """
    training_run_watch_enqueue(run_id)
    outcome = runner.training_run_execute(run_id)
    if outcome == "succeeded":
        next_run_id = runs.run_next_queued(run_id=run_id)
        if next_run_id is not None:
            training_run_enqueue(next_run_id)
    return outcome


@task()
def runs_reap() -> list[int]:
    """Mark steps whose worker stopped (no heartbeat) as failed."""
    return runs.runs_reap()


@task()
def training_run_watch(run_id: int) -> str:
    """The watchdog of a running step: reap it if its heartbeat stopped, else look again later.

    Deferred (``run_after``) on backends that support it, so a worker that starts after another
    one died picks it up and the dead worker's round is marked failed.
    """
    if runs.training_run_watch(run_id=run_id):
        training_run_watch_enqueue(run_id)
        return "watching"
    return "done"


@task()
def checkpoint_generate(request: dict[str, Any]) -> dict[str, int]:
    """Sample a checkpoint outside a round (the generate API). Safe to run twice: the same seed
    gives the same texts, and identical texts under a prompt are one response."""
    prompts, added = runner.checkpoint_generate(**request)
    return {
        "prompts": prompts,
        "responses": added.responses,
        "comparisons": added.comparisons,
        "held_out_prompts": added.held_out_prompts,
    }
