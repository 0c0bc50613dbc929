"""What the interchange management commands share: finding the project, reading the file,
turning labeling errors into CommandError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.interchange.formats import CONTAINERS, ImportRejected, SourceFile, rows_read
from labeling.interchange.imports import ImportResult
from labeling.models import Project
from labeling.safeinput import db_id
from labeling.services import LabelingError


def project_find(reference: str) -> Project:
    """A project by id or by name."""
    project = None
    if (pk := db_id(reference)) is not None:
        project = Project.objects.filter(pk=pk).first()
    if project is None:
        project = Project.objects.filter(name=reference).first()
    if project is None:
        raise CommandError(f"no project with id or name {reference!r}")
    return project


class ImportCommand(BaseCommand):
    """A command that reads FILE into PROJECT through one import service."""

    container_option = "format"
    #: False: the service streams, so the file may be of any size (no upload or row limit).
    upload_limits = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("file", help="a .jsonl, .json, .csv or .parquet file")
        parser.add_argument(
            f"--{self.container_option}",
            dest="container",
            choices=CONTAINERS,
            help="file format (default: from the extension, else from the content)",
        )

    def run_import(self, options: dict[str, Any], service: Callable[..., ImportResult]) -> None:
        project = project_find(options["project"])
        try:
            source = SourceFile.from_path(options["file"])
        except OSError as exc:
            raise CommandError(f"cannot read {options['file']}: {exc.strerror}") from exc
        try:
            result = service(
                project=project,
                rows=rows_read(source, container=options["container"], limits=self.upload_limits),
            )
        except ImportRejected as exc:
            raise CommandError(
                "\n".join(str(error) for error in exc.errors) + "\nnothing was imported"
            ) from exc
        except LabelingError as exc:
            raise CommandError(exc.message) from exc
        finally:
            source.close()
        self.stdout.write(f"{project.name}: {result.summary()}")
