"""``manage.py serve``: the documented way to run Pairwise (production and ``make demo`` alike).

It prepares, then supervises:

1. ``collectstatic`` (with ``DEBUG=0`` the pages name hashed files from the static manifest: no
   manifest, every page answers 500) and ``migrate``;
2. gunicorn on ``--bind`` with threaded workers (``gthread``): ``--workers`` processes (default:
   the usable cores) of ``--threads`` threads (default 8). Threads are pooled, so each keeps at
   most one database connection (``CONN_MAX_AGE``) and the open files stay bounded;
3. ``--db-workers`` job workers (default 1, ``0`` for a web-only host) on ``--queue-name``
   (default ``*``, every queue; GPU hosts run ``db_worker --queue-name gpu`` on their own).

SIGTERM or SIGINT (Ctrl-C) stops every child (SIGTERM, then SIGKILL after ``--stop-grace``) and
exits 0. A child that exits on its own stops the others too, and ``serve`` exits with its status.
``--exit-with-parent`` stops everything when the parent process goes (``make demo`` stopped by
its PID). Children die with ``serve`` itself (Linux ``PR_SET_PDEATHSIG``), even on SIGKILL.

Environment defaults: ``PAIRWISE_BIND``, ``PAIRWISE_WEB_WORKERS``, ``PAIRWISE_WEB_THREADS``,
``PAIRWISE_DB_WORKERS``, ``PAIRWISE_WORKER_QUEUES``, ``PAIRWISE_WEB_TIMEOUT``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

PR_SET_PDEATHSIG = 1


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent process exits (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


class Command(BaseCommand):
    help = (
        "Collect static files, migrate, then run gunicorn (threaded workers sized to the cores) "
        "and the job worker(s) until SIGTERM/Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind",
            default=os.environ.get("PAIRWISE_BIND", "127.0.0.1:8000"),
            help="HOST:PORT gunicorn listens on (default %(default)s, env PAIRWISE_BIND)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=_env_int("PAIRWISE_WEB_WORKERS", max(2, usable_cores())),
            help="gunicorn worker processes (default: the usable cores, at least 2)",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=_env_int("PAIRWISE_WEB_THREADS", 8),
            help="threads per gunicorn worker (default %(default)s)",
        )
        parser.add_argument(
            "--timeout",
            type=int,
            default=_env_int("PAIRWISE_WEB_TIMEOUT", 120),
            help="seconds before a silent gunicorn worker is restarted (default %(default)s)",
        )
        parser.add_argument(
            "--db-workers",
            type=int,
            default=_env_int("PAIRWISE_DB_WORKERS", 1),
            help="job workers to run beside the web server (0: none)",
        )
        parser.add_argument(
            "--queue-name",
            default=os.environ.get("PAIRWISE_WORKER_QUEUES", "*"),
            help="the job workers' queues, comma-separated ('*': all; default %(default)r)",
        )
        parser.add_argument("--no-collectstatic", action="store_true")
        parser.add_argument("--no-migrate", action="store_true")
        parser.add_argument(
            "--stop-grace",
            type=float,
            default=10.0,
            help="seconds children get to stop after SIGTERM before SIGKILL",
        )
        parser.add_argument(
            "--exit-with-parent",
            action="store_true",
            help="stop everything when the parent process exits (make demo)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] < 1 or options["threads"] < 1 or options["db_workers"] < 0:
            raise CommandError("--workers and --threads must be at least 1, --db-workers 0 or more")
        if options["exit_with_parent"]:
            _die_with_parent()
        parent = os.getppid()
        if not options["no_collectstatic"]:
            call_command("collectstatic", interactive=False, verbosity=0)
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)

        stopping: list[int] = []

        def stop(signum: int, frame: Any) -> None:
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        children = self._start(options)
        self.stdout.write(
            f"Pairwise on http://{options['bind']}/ : gunicorn {options['workers']} workers x "
            f"{options['threads']} threads, {options['db_workers']} job worker(s) on "
            f"{options['queue_name']!r} (DEBUG={int(settings.DEBUG)}); Ctrl-C or SIGTERM stops it"
        )
        self.stdout.flush()
        status = 0
        try:
            while not stopping:
                if options["exit_with_parent"] and os.getppid() != parent:
                    break
                exited = [child for child in children if child.poll() is not None]
                if exited:
                    status = exited[0].returncode or 0
                    which = "gunicorn" if exited[0] is children[0] else "a job worker"
                    self.stderr.write(f"{which} exited with status {status}; stopping the rest")
                    break
                time.sleep(0.2)
        finally:
            self._stop(children, grace=options["stop_grace"])
        if status:
            sys.exit(status if status > 0 else 1)

    def _start(self, options: dict[str, Any]) -> list[subprocess.Popen[bytes]]:
        python = sys.executable
        commands = [
            [
                python,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                options["bind"],
                "--worker-class",
                "gthread",
                "--workers",
                str(options["workers"]),
                "--threads",
                str(options["threads"]),
                "--timeout",
                str(options["timeout"]),
                "--graceful-timeout",
                str(int(options["stop_grace"])),
                "--no-control-socket",  # one per host by default: several servers would clash
                "--access-logfile",
                "-" if settings.DEBUG else "/dev/null",
            ]
        ]
        for index in range(options["db_workers"]):
            commands.append(
                [
                    python,
                    "manage.py",
                    "db_worker",
                    "--queue-name",
                    options["queue_name"],
                    "--no-reload",
                    "--worker-id",
                    f"{os.uname().nodename}-{os.getpid()}-{index}"[:64],
                ]
            )
        return [
            subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                # Own process groups: the terminal's Ctrl-C reaches serve alone, which stops each
                # child once, in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,  # prctl only: safe after fork
            )
            for command in commands
        ]

    def _stop(self, children: list[subprocess.Popen[bytes]], *, grace: float) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
