"""``import_responses PROJECT FILE``: responses by prompt id; pairs become comparisons."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.core.management.base import CommandParser

from labeling.interchange.commands import ImportCommand
from labeling.interchange.imports import responses_import


class Command(ImportCommand):
    help = (
        'Import responses: {"prompt_id", "responses": [{"text", "model", "params", "seed"}]} or '
        'flat {"prompt_id", "text", "model", ...} rows. Each prompt\'s responses become '
        "comparisons (all pairs, or --max-pairs sampled pairs per prompt)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--max-pairs",
            type=int,
            default=None,
            help="at most this many sampled pairs per prompt (default: the project's setting)",
        )
        parser.add_argument("--batch", default="import", help="batch tag of the new comparisons")
        parser.add_argument("--seed", type=int, default=0, help="seed of the pair sampling")

    def handle(self, *args: Any, **options: Any) -> None:
        service = partial(
            responses_import,
            max_pairs=options["max_pairs"],
            batch=options["batch"],
            seed=options["seed"],
        )
        self.run_import(options, service)
