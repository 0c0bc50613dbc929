"""``manage.py reap_runs [--every S]``: mark training steps whose worker stopped as failed.

Every task already reaps before it starts; run this from cron (or with ``--every``) so a dead
worker's round is marked failed even while no other task runs.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rlhf import runs


class Command(BaseCommand):
    help = "Mark training runs whose heartbeat stopped as failed (once, or every S seconds)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=0.0, help="repeat every S seconds")

    def handle(self, *args: Any, every: float, **options: Any) -> None:
        while True:
            reaped = runs.runs_reap()
            if reaped:
                self.stdout.write(f"reaped runs {', '.join(map(str, reaped))}")
            if every <= 0:
                return
            time.sleep(every)
