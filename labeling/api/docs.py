"""The API reference page at /api/v1/docs/: the generated OpenAPI schema as one plain HTML page.

Self-contained (no CDN, no JavaScript): every operation with its method, path, summary,
parameters and the fields of its request and response bodies, read from drf-spectacular's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.views.decorators.http import require_safe
from drf_spectacular.generators import SchemaGenerator

TEMPLATE_PATH = Path(__file__).with_name("docs.html")
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class BodyDoc:
    label: str
    fields: list[FieldDoc]


@dataclass
class OperationDoc:
    method: str
    path: str
    summary: str
    description: str
    tags: list[str]
    parameters: list[FieldDoc] = field(default_factory=list)
    request: list[BodyDoc] = field(default_factory=list)
    responses: list[BodyDoc] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return (
            f"{self.method}-{self.path}".strip("/")
            .replace("/", "-")
            .replace("{", "")
            .replace("}", "")
        )


class _Resolver:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.components = schema.get("components", {}).get("schemas", {})

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in node and seen < 20:
            node = self.components.get(node["$ref"].rsplit("/", 1)[-1], {})
            seen += 1
        if "allOf" in node and len(node["allOf"]) == 1:
            return self.resolve(node["allOf"][0])
        return node

    def type_name(self, node: dict[str, Any]) -> str:
        ref = node.get("$ref") or (node.get("allOf") or [{}])[0].get("$ref")
        resolved = self.resolve(node)
        if "oneOf" in resolved:
            parts = [self.type_name(part) for part in resolved["oneOf"]]
            named = " | ".join(part for part in parts if part)
            return f"{named} or null" if "" in parts else named
        if "enum" in resolved:
            values = [v for v in resolved["enum"] if v not in ("", None)]
            return " | ".join(str(v) for v in values)
        kind = str(resolved.get("type", "object" if ref else "any"))
        if kind == "array":
            return f"list of {self.type_name(resolved.get('items', {}))}"
        if resolved.get("format"):
            kind = f"{kind} ({resolved['format']})"
        if resolved.get("nullable") or node.get("nullable"):
            kind += " or null"
        return kind

    def fields(self, node: dict[str, Any], prefix: str = "", depth: int = 0) -> list[FieldDoc]:
        resolved = self.resolve(node)
        if resolved.get("type") == "array" and prefix == "":
            return self.fields(resolved.get("items", {}), "[].", depth)
        required = set(resolved.get("required", []))
        result: list[FieldDoc] = []
        for name, prop in resolved.get("properties", {}).items():
            inner = self.resolve(prop)
            description = str(prop.get("description") or inner.get("description") or "")
            if prop.get("readOnly"):
                description = (description + " (read-only)").strip()
            result.append(
                FieldDoc(prefix + name, self.type_name(prop), name in required, description)
            )
            if inner.get("properties") and depth < 3:
                result.extend(self.fields(inner, f"{prefix}{name}.", depth + 1))
            elif inner.get("type") == "array" and depth < 3:
                items = self.resolve(inner.get("items", {}))
                if items.get("properties"):
                    result.extend(self.fields(items, f"{prefix}{name}[].", depth + 1))
        return result


def operations(schema: dict[str, Any]) -> list[OperationDoc]:
    """The operations of an OpenAPI document, flattened for reading."""
    resolver = _Resolver(schema)
    result: list[OperationDoc] = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            doc = OperationDoc(
                method=method.upper(),
                path=path,
                summary=str(op.get("summary", "")),
                description=str(op.get("description", "")),
                tags=list(op.get("tags", [])),
            )
            for param in op.get("parameters", []):
                doc.parameters.append(
                    FieldDoc(
                        f"{param['name']} ({param.get('in', '')})",
                        resolver.type_name(param.get("schema", {})),
                        bool(param.get("required")),
                        str(param.get("description", "")),
                    )
                )
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                doc.request.append(
                    BodyDoc(
                        "application/json", resolver.fields(content["application/json"]["schema"])
                    )
                )
            for code, response in op.get("responses", {}).items():
                body = response.get("content", {}).get("application/json", {}).get("schema")
                label = f"{code} {response.get('description', '')}".strip()
                doc.responses.append(BodyDoc(label, resolver.fields(body) if body else []))
            result.append(doc)
    return result


@require_safe
def api_docs(request: HttpRequest) -> HttpResponse:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    template = engines["django"].from_string(TEMPLATE_PATH.read_text())
    context = {
        "title": schema.get("info", {}).get("title", "API"),
        "version": schema.get("info", {}).get("version", ""),
        "description": schema.get("info", {}).get("description", ""),
        "operations": operations(schema),
    }
    return HttpResponse(template.render(context, request))
