"""Background jobs of the model side (django-tasks; ``python manage.py db_worker`` runs them).

Tasks take ids only, are enqueued with ``transaction.on_commit`` by ``rlhf.services`` and are safe
to run twice (the runner claims a run with a conditional update). The bodies call the runner,
imported lazily so that importing this module (the web process does, to enqueue) stays cheap.
"""

from __future__ import annotations

from django_tasks import task


@task()
def training_run_execute(run_id: int) -> str:
    """Run one step of a tuning round; the runner enqueues the next step when it succeeds."""
    from rlhf import runner

    return runner.training_run_execute(run_id)


@task()
def runs_reap() -> list[int]:
    """Mark steps whose worker stopped (no heartbeat) as failed."""
    from rlhf import services

    return services.runs_reap()


@task()
def training_run_watch(run_id: int) -> str:
    """The watchdog of a running step: reap it if its heartbeat stopped, else look again later.

    Deferred (``run_after``) on backends that support it, so a worker that starts after another
    one died picks it up and the dead worker's round is marked failed.
    """
    from rlhf import services

    return services.training_run_watch(run_id=run_id)
