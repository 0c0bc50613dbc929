"""``gold_generate --project X --count N``: gold comparisons made from the project's responses."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from labeling import gold
from labeling.interchange.commands import project_find
from labeling.services import LabelingError, gold_generate, project_gold_rate_set


class Command(BaseCommand):
    help = (
        "Generate gold comparisons: a real response against a known-worse variant of it "
        "(truncated, sentences shuffled, another prompt's response); the original is the answer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project id or name")
        parser.add_argument("--count", required=True, type=int, help="how many (1-1000)")
        parser.add_argument("--seed", type=int, help="for a repeatable choice of responses")
        parser.add_argument(
            "--variants",
            help=f"comma-separated, among {', '.join(gold.VARIANTS)} (default: all)",
        )
        parser.add_argument(
            "--rate", type=float, help="also set the project's gold rate (0 to 0.5)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_find(options["project"])
        variants = gold.VARIANTS
        if options["variants"]:
            variants = tuple(v.strip() for v in options["variants"].split(",") if v.strip())
        try:
            with transaction.atomic():  # both or neither
                if options["rate"] is not None:
                    project_gold_rate_set(project=project, gold_rate=options["rate"])
                created = gold_generate(
                    project=project,
                    count=options["count"],
                    seed=options["seed"],
                    variants=variants,
                )
        except LabelingError as exc:
            raise CommandError(f"{exc.field}: {exc.message}" if exc.field else exc.message) from exc
        self.stdout.write(
            f"{project.name}: {len(created)} gold comparisons generated "
            f"(asked {options['count']}); gold rate {project.gold_rate:g}"
        )
