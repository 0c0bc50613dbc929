"""``export_preferences PROJECT --format … --output PATH``: a preference dataset and its card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.interchange.commands import project_find
from labeling.interchange.export_files import preferences_export
from labeling.interchange.formats import EXPORT_FORMATS
from labeling.interchange.specs import (
    ADJUDICATED,
    AGGREGATIONS,
    ANNOTATOR_WEIGHTS,
    BOTH_BAD_POLICIES,
    FILE_CONTAINERS,
    PARAMETERS,
    SOURCES,
    SPLITS,
    TIE_POLICIES,
    export_spec_parse,
)
from labeling.services import LabelingError

EXTENSIONS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


class Command(BaseCommand):
    help = (
        "Export preferences as TRL (standard/conversational), KTO, HH or raw judgments, in JSON "
        "Lines, CSV, Parquet or a Hugging Face dataset directory (train/test), with a dataset card."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--format", default="trl", choices=EXPORT_FORMATS)
        parser.add_argument("--output", required=True, help="file, or directory for --container hf")
        parser.add_argument(
            "--container",
            choices=FILE_CONTAINERS,
            help="default: from the output's extension (.jsonl/.csv/.parquet), else hf",
        )
        parser.add_argument("--aggregation", default="majority", choices=AGGREGATIONS)
        parser.add_argument("--ties", default="drop", choices=TIE_POLICIES)
        parser.add_argument(
            "--both-bad",
            default="drop",
            choices=BOTH_BAD_POLICIES,
            help="separate: a <output>.both_bad.jsonl side file",
        )
        parser.add_argument("--margin", action="store_true", help=PARAMETERS["margin"])
        parser.add_argument("--weight", action="store_true", help=PARAMETERS["weight"])
        parser.add_argument(
            "--annotator-weights",
            default="none",
            choices=ANNOTATOR_WEIGHTS,
            help=PARAMETERS["annotator_weights"],
        )
        parser.add_argument("--drop-below", help=PARAMETERS["drop_below"])
        parser.add_argument(
            "--adjudicated", default="ignore", choices=ADJUDICATED, help=PARAMETERS["adjudicated"]
        )
        parser.add_argument("--round", help=PARAMETERS["round"])
        parser.add_argument("--batch", help=PARAMETERS["batch"])
        parser.add_argument("--since", help=PARAMETERS["since"])
        parser.add_argument("--until", help=PARAMETERS["until"])
        parser.add_argument("--annotators", help=PARAMETERS["annotators"])
        parser.add_argument("--min-agreement", help=PARAMETERS["min_agreement"])
        parser.add_argument("--exclude-flags", help=PARAMETERS["exclude_flags"])
        parser.add_argument("--source", default="all", choices=SOURCES)
        parser.add_argument("--split", default="all", choices=SPLITS)
        parser.add_argument("--test-size", help=PARAMETERS["test_size"])
        parser.add_argument("--seed", help=PARAMETERS["seed"])

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_find(options["project"])
        output = Path(options["output"])
        container = options["container"] or EXTENSIONS.get(output.suffix.lower(), "hf")
        params = {name: options[name] for name in PARAMETERS if name not in ("format", "container")}
        params.update(format=options["format"], container=container)
        params["margin"] = "1" if options["margin"] else ""
        params["weight"] = "1" if options["weight"] else ""
        try:
            spec = export_spec_parse(params, containers=FILE_CONTAINERS)
            stats = preferences_export(project=project, spec=spec, output=output)
        except LabelingError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{project.name}: {stats.rows} rows (train {stats.rows_by_split.get('train', 0)}, "
            f"test {stats.rows_by_split.get('test', 0)}) from {stats.comparisons_exported} "
            f"comparisons → {output}; sha256 {stats.content_hash}"
        )
