"""``manage.py simulate_annotators PROJECT --annotators N --rule NAME --noise P --limit M``.

Drives the real HTTP API (``--url``, default http://127.0.0.1:8000) as N annotator accounts
(created if missing, with API tokens) that judge by a preference rule from
``rlhf.training.rules`` with label noise P. ``--in-process`` uses the services directly instead.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from rlhf import selectors
from rlhf.simulate import ApiError, annotators_ensure, judge_in_process, judge_over_http
from rlhf.training.rules import RULES


class Command(BaseCommand):
    help = "Judge a project's queue as N scripted annotators (a rule plus label noise)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--annotators", type=int, default=3)
        parser.add_argument("--rule", choices=sorted(RULES), default="correct_polite")
        parser.add_argument("--noise", type=float, default=0.0, help="label-flip probability")
        parser.add_argument("--limit", type=int, default=None, help="judgments in all")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
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
