"""The API's JSON parsers: DRF's, with ``labeling.safeinput``'s limits. A body over them answers
400 naming the value, never a 500."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from labeling.safeinput import UnsafeInput, json_load_bounded, json_parse


class JSONParser(parsers.JSONParser):
    """Refuses a body nested too deep or holding unstorable text (NUL, lone surrogates)."""

    def load(self, text: str) -> Any:
        return json_parse(text, allow_nan=not self.strict)

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return self.load(stream.read().decode(encoding))
        except UnsafeInput as exc:
            if exc.path:
                raise ParseError({exc.path: [exc.message]}) from None
            raise ParseError(f"the JSON body {exc.message}") from None
        except ValueError as exc:  # malformed JSON, or bytes not in the declared encoding
            raise ParseError(f"JSON parse error - {exc}") from None


class RowsJSONParser(JSONParser):
    """The imports' parser: refuses only what the parser itself cannot survive (deep nesting);
    the import checks each row's text and depth, and names the item and field."""

    def load(self, text: str) -> Any:
        return json_load_bounded(text, allow_nan=not self.strict)
