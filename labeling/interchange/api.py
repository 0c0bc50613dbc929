"""REST endpoints of the interchange: imports (prompts, responses, preference datasets) and the
streamed export. Admins only; projects the caller cannot see answer 404.

Imports take a JSON list body (rows numbered as items) or an uploaded file (multipart ``file``,
or a raw JSON Lines / CSV body); the container comes from ``format`` (query or form field), else
the file name, the content type, or the content. The export streams rows as they are read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors
from labeling.api.parsers import RowsJSONParser
from labeling.api.schema import ErrorSerializer
from labeling.api.throttles import ScopedThrottle
from labeling.interchange.cards import dataset_card_render
from labeling.interchange.exports import export_filename, export_stream
from labeling.interchange.formats import (
    IMPORT_FORMATS,
    ImportRejected,
    SourceFile,
    items_read,
    rows_read,
    size_check,
)
from labeling.interchange.imports import ImportResult, prompts_import, responses_import
from labeling.interchange.preference_imports import preferences_import
from labeling.interchange.specs import PARAMETERS, ExportStats, export_spec_parse
from labeling.models import Project
from labeling.roles import is_admin
from labeling.safeinput import text_problem
from labeling.services import LabelingError

CONTENT_TYPES = {
    "jsonl": "application/jsonl; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


class IgnoreFormatNegotiation(BaseContentNegotiation):
    """``?format=`` names a file or dataset format here, not a DRF renderer."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        content_type = request.content_type.split(";")[0].strip().lower()
        for parser in parsers:
            if parser.media_type == content_type:
                return parser
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class _FileBodyParser(BaseParser):
    """A raw JSON Lines or CSV request body, handed over as a file."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = stream.read() if stream is not None else b""
        return SourceFile.from_bytes(data, content_type=self.media_type)


def _file_parser(media_type: str) -> type[BaseParser]:
    return type(f"FileBodyParser_{media_type}", (_FileBodyParser,), {"media_type": media_type})


FILE_BODY_PARSERS = [
    _file_parser(media_type)
    for media_type in ("application/jsonl", "application/x-ndjson", "text/csv", "application/csv")
]


def admin_project(request: Any, project_id: int) -> Project:
    """A project the caller may see (404 otherwise) and manage (403 for annotators)."""
    try:
        project = selectors.project_get_visible(user=request.user, project_id=project_id)
    except Project.DoesNotExist:
        raise NotFound(f"no project {project_id}") from None
    if not is_admin(request.user):
        raise PermissionDenied("only admins import and export")
    return project


def rejected_response(exc: ImportRejected) -> Response:
    return Response(
        {
            "error": exc.message,
            "field": exc.field,
            "detail": {"errors": [error.as_dict() for error in exc.errors]},
        },
        status=exc.status,
    )


class _ImportView(APIView):
    parser_classes = [RowsJSONParser, MultiPartParser, FormParser, *FILE_BODY_PARSERS]
    content_negotiation_class = IgnoreFormatNegotiation
    container_param = "format"

    def run(self, project: Project, rows: Any, unit: str, options: dict[str, Any]) -> ImportResult:
        raise NotImplementedError

    def post(self, request: Request, project_id: int) -> Response:
        project = admin_project(request, project_id)
        try:
            size_check(int(request.META.get("CONTENT_LENGTH") or 0))
        except ImportRejected as exc:
            return rejected_response(exc)
        options: dict[str, Any] = {**request.query_params.dict()}
        data = request.data
        if hasattr(data, "dict"):
            options.update({key: value for key, value in data.dict().items() if key != "file"})
        if isinstance(data, dict) and not hasattr(data, "dict"):
            options.update({k: v for k, v in data.items() if isinstance(v, str | int)})
        for name, value in options.items():
            if isinstance(value, str) and (problem := text_problem(value)):
                raise LabelingError(f"{name} {problem}", field=name)
        upload = request.FILES.get("file")
        try:
            if upload is not None or isinstance(data, SourceFile):
                source = (
                    data
                    if isinstance(data, SourceFile)
                    else SourceFile(upload, upload.size, upload.name, upload.content_type or "")
                )
                rows: Any = rows_read(source, container=options.get(self.container_param) or None)
                unit = "line"
            elif isinstance(data, list | dict) and not hasattr(data, "dict"):
                rows, unit = list(items_read(data)), "item"
            else:
                raise LabelingError(
                    "send a JSON list of rows or a file in the 'file' field", field="file"
                )
            result = self.run(project, rows, unit, options)
        except ImportRejected as exc:
            return rejected_response(exc)
        body = {**result.as_dict(), "summary": result.summary()}
        return Response(body, status=status.HTTP_201_CREATED)


class ImportResultSerializer(serializers.Serializer[Any]):
    """What an import answers (201)."""

    prompts_created = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    comparisons_created = serializers.IntegerField()
    judgments_created = serializers.IntegerField()
    users_created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    skipped_duplicates = serializers.ListField(child=serializers.CharField())
    summary = serializers.CharField()


_IMPORT_REQUEST = {
    "application/json": {"type": "array", "items": {}},
    "multipart/form-data": {
        "type": "object",
        "properties": {"file": {"type": "string", "format": "binary"}},
    },
    "application/jsonl": {"type": "string", "format": "binary"},
    "text/csv": {"type": "string", "format": "binary"},
}


def _import_schema(summary: str, *parameters: OpenApiParameter) -> Any:
    return extend_schema(
        summary=summary,
        request=_IMPORT_REQUEST,
        parameters=list(parameters),
        responses={201: ImportResultSerializer, 413: ErrorSerializer},
    )


_CONTAINER_PARAMETER = OpenApiParameter(
    "format", str, description="file format: jsonl, json, csv, parquet (default: detected)"
)


def _int_option(options: dict[str, Any], name: str) -> int | None:
    value = options.get(name)
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise LabelingError(f"{name} must be an integer", field=name) from None


class PromptsImportView(_ImportView):
    """POST prompts: strings or {id, prompt (string or messages), metadata, split}."""

    @_import_schema("Import prompts", _CONTAINER_PARAMETER)
    def post(self, request: Request, project_id: int) -> Response:
        return super().post(request, project_id)

    def run(self, project: Project, rows: Any, unit: str, options: dict[str, Any]) -> ImportResult:
        return prompts_import(project=project, rows=rows, unit=unit)


class ResponsesImportView(_ImportView):
    """POST responses grouped by prompt or flat; each prompt's pairs become comparisons."""

    @_import_schema(
        "Import responses; each prompt's pairs become comparisons",
        _CONTAINER_PARAMETER,
        OpenApiParameter(
            "max_pairs", int, description="at most this many sampled pairs per prompt"
        ),
        OpenApiParameter("batch", str, description="batch tag of the new comparisons"),
    )
    def post(self, request: Request, project_id: int) -> Response:
        return super().post(request, project_id)

    def run(self, project: Project, rows: Any, unit: str, options: dict[str, Any]) -> ImportResult:
        return responses_import(
            project=project,
            rows=rows,
            unit=unit,
            max_pairs=_int_option(options, "max_pairs"),
            batch=str(options.get("batch") or "import")[:100],
        )


class PreferencesImportView(_ImportView):
    """POST an existing preference dataset: ``format`` trl, trl_conversational, hh or raw;
    ``container`` is the file's (jsonl, json, csv)."""

    container_param = "container"

    @_import_schema(
        "Import an existing preference dataset",
        OpenApiParameter("format", str, required=True, enum=list(IMPORT_FORMATS)),
        OpenApiParameter("container", str, description="jsonl, json, csv, parquet"),
        OpenApiParameter("annotator", str, description="username the judgments belong to"),
        OpenApiParameter("batch", str, description="batch tag of new comparisons"),
    )
    def post(self, request: Request, project_id: int) -> Response:
        return super().post(request, project_id)

    def run(self, project: Project, rows: Any, unit: str, options: dict[str, Any]) -> ImportResult:
        annotator = options.get("annotator") or None
        return preferences_import(
            project=project,
            rows=rows,
            unit=unit,
            dataset_format=str(options.get("format") or options.get("dataset_format") or ""),
            annotator=str(annotator)[:150] if annotator else None,
            batch=str(options.get("batch") or "import")[:100],
        )


class ExportView(APIView):
    """GET a streamed export. ``?card=1`` answers the dataset card instead (Markdown)."""

    throttle_classes = [ScopedThrottle]
    throttle_scope = "export"

    content_negotiation_class = IgnoreFormatNegotiation

    @extend_schema(
        summary="Export preferences (streamed)",
        parameters=[
            *(OpenApiParameter(name, str, description=text) for name, text in PARAMETERS.items()),
            OpenApiParameter("card", str, description="1: the dataset card (Markdown) instead"),
        ],
        responses={
            (200, "application/jsonl"): OpenApiTypes.BINARY,
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY,
            (200, "text/markdown"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request, project_id: int) -> HttpResponseBase:
        project = admin_project(request, project_id)
        params = {
            key: ",".join(values) if key in ("annotators", "exclude_flags") else values[-1]
            for key, values in request.query_params.lists()
        }
        want_card = params.pop("card", "") in ("1", "true", "yes")
        spec = export_spec_parse(params)
        stats = ExportStats()
        if want_card:
            for chunk in export_stream(project=project, spec=spec, stats=stats):
                del chunk
            if spec.both_bad == "only":
                stats.rows = stats.both_bad_rows
            card = dataset_card_render(project=project, spec=spec, stats=stats)
            return HttpResponse(card, content_type="text/markdown; charset=utf-8")
        response = StreamingHttpResponse(
            export_stream(project=project, spec=spec, stats=stats, content_hash=False),
            content_type=CONTENT_TYPES[spec.container if spec.both_bad != "only" else "jsonl"],
        )
        filename = export_filename(project, spec)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        card_url = (
            reverse("api-export", args=[project.pk]) + "?" + urlencode({**params, "card": "1"})
        )
        response["Link"] = f'<{card_url}>; rel="describedby"; type="text/markdown"'
        response["Cache-Control"] = "no-store"
        return response
