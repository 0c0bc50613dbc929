"""The labeling rules' refusals, shared by the services and the queue engine.

``labeling.services`` re-exports both, so callers keep writing ``services.LabelingError``.
"""

from __future__ import annotations


class LabelingError(Exception):
    """A request the labeling rules refuse. ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Conflict(LabelingError):
    status = 409
