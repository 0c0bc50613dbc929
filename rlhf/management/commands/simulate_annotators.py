"""``manage.py simulate_annotators PROJECT --annotators N --rule NAME --noise P --limit M``.

Drives the real HTTP API (``--url``, default ``$PAIRWISE_URL``, else http://127.0.0.1:$PORT with
``PORT`` as ``make demo PORT=…`` takes it, 8000 when unset) as N annotator accounts
(created if missing, with API tokens) that judge by a preference rule from
``rlhf.training.rules`` with label noise P. ``--in-process`` uses the services directly instead.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from rlhf import selectors
from rlhf.simulate import ApiError, annotators_ensure, judge_in_process, judge_over_http
from rlhf.training.rules import RULES


def default_url() -> str:
    """``$PAIRWISE_URL``, else the demo server's address: ``make demo`` binds 127.0.0.1:$PORT."""
    return os.environ.get("PAIRWISE_URL") or f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"


EXAMPLE = """example, against `make demo PORT=8001` (the demo project is "Demo: helpful answers"):
  .venv/bin/python manage.py simulate_annotators "Demo: helpful answers" --annotators 3 \\
      --rule correct_polite --noise 0.1 --limit 150 --url http://127.0.0.1:8001
(or PORT=8001 in the environment instead of --url)"""


class Command(BaseCommand):
    help = "Judge a project's queue as N scripted annotators (a rule plus label noise)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        import argparse

        parser = super().create_parser(
            prog_name,
            subcommand,
            epilog=EXAMPLE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--annotators", type=int, default=3)
        parser.add_argument("--rule", choices=sorted(RULES), default="correct_polite")
        parser.add_argument("--noise", type=float, default=0.0, help="label-flip probability")
        parser.add_argument("--limit", type=int, default=None, help="judgments in all")
        parser.add_argument(
            "--url",
            default=default_url(),
            help="server base URL (default %(default)s: $PAIRWISE_URL, else 127.0.0.1:$PORT)",
        )
        parser.add_argument("--in-process", action="store_true", help="no HTTP: call services")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--prefix", default="sim", help="account names: PREFIX-annotator-i")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            project = selectors.project_by_ref(options["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(f"no project {options['project']!r}") from exc
        if not 0.0 <= options["noise"] <= 1.0:
            raise CommandError("--noise must be in [0, 1]")
        accounts = annotators_ensure(project, options["annotators"], prefix=options["prefix"])
        common: dict[str, Any] = {
            "rule": options["rule"],
            "noise": options["noise"],
            "limit": options["limit"],
            "seed": options["seed"],
        }
        try:
            if options["in_process"]:
                stats = judge_in_process(
                    project=project, annotators=[user for user, _ in accounts], **common
                )
            else:
                stats = judge_over_http(
                    base_url=options["url"],
                    project_id=project.pk,
                    tokens=[token for _, token in accounts],
                    **common,
                )
        except (ApiError, OSError) as exc:
            raise CommandError(f"the API at {options['url']} failed: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{stats.judged} judgments by {stats.annotators} simulated annotators "
                f"({stats.ties} ties), rule {options['rule']}, noise {options['noise']}"
            )
        )
