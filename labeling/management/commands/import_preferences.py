"""``import_preferences PROJECT FILE --format trl|trl_conversational|hh|raw``.

Server-side, so neither the web upload limit (PAIRWISE_MAX_UPLOAD_MB) nor the row limit applies:
JSON Lines, CSV and Parquet files of any size stream through in chunks with flat memory (a
``.json`` list is read whole). Still all or nothing: a bad line imports nothing and is named.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.core.management.base import CommandParser

from labeling.interchange.commands import ImportCommand
from labeling.interchange.formats import IMPORT_FORMATS
from labeling.interchange.preference_imports import preferences_import


class Command(ImportCommand):
    help = (
        "Import an existing preference dataset: prompts, responses, comparisons and judgments, "
        "all marked imported. Judgments belong to an import user (import-<format>, or --annotator) "
        "or, for raw, to the original annotators. Any file size (JSONL/CSV/Parquet stream); a bad "
        "line imports nothing."
    )
    container_option = "container"
    upload_limits = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--format", dest="dataset_format", required=True, choices=IMPORT_FORMATS
        )
        parser.add_argument("--annotator", default=None, help="username the judgments belong to")
        parser.add_argument("--batch", default="import", help="batch tag of new comparisons")

    def handle(self, *args: Any, **options: Any) -> None:
        service = partial(
            preferences_import,
            dataset_format=options["dataset_format"],
            annotator=options["annotator"],
            batch=options["batch"],
        )
        self.run_import(options, service)
