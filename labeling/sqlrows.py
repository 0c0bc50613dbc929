"""Model instances out of hand-written SQL rows, converted exactly as the ORM's compiler would.

The queue's hot path (claim, submit, token auth, the scoping look-ups) is hand-written SQL: on
those few statements the ORM's query compilation cost several times the database's own work.
``RowReader`` keeps the result the same as the ORM's: every concrete column of a model, passed
through the backend's and the field's database converters (datetimes, JSON), then
``Model.from_db``, so the instance is indistinguishable from a queryset's.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

Converter = Callable[[Any, Any, Any], Any]


class RowReader:
    """Reads one model's concrete columns, selected under ``alias``, out of a result row."""

    def __init__(self, model: type[Model], alias: str) -> None:
        self.model = model
        self.alias = alias
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in self.fields]
        self.pk_index = self.attnames.index(model._meta.pk.attname)
        self.columns = ", ".join(f"{alias}.{f.column}" for f in self.fields)
        # Per database connection (one per thread): [(index, column, converters)] of the
        # columns that have converters at all.
        self._converters: weakref.WeakKeyDictionary[
            BaseDatabaseWrapper, list[tuple[int, Any, list[Converter]]]
        ] = weakref.WeakKeyDictionary()

    def __len__(self) -> int:
        return len(self.fields)

    def _converters_for(self, db: BaseDatabaseWrapper) -> list[tuple[int, Any, list[Converter]]]:
        found = self._converters.get(db)
        if found is None:
            found = []
            for index, model_field in enumerate(self.fields):
                col = model_field.get_col(self.alias)
                converters = db.ops.get_db_converters(col) + col.get_db_converters(db)
                if converters:
                    found.append((index, col, converters))
            self._converters[db] = found
        return found

    def read(self, row: Sequence[Any], start: int = 0) -> Any:
        """The instance in ``row[start:start + len(self)]``; None when its primary key is NULL
        (the missing side of an outer join)."""
        values = list(row[start : start + len(self.fields)])
        if values[self.pk_index] is None:
            return None
        db = connections[connection.alias]
        for index, col, converters in self._converters_for(db):
            value = values[index]
            for converter in converters:
                value = converter(value, col, db)
            values[index] = value
        return self.model.from_db(db.alias, self.attnames, values)


def db_datetime(value: datetime) -> Any:
    """A datetime as a query parameter, adapted as the ORM adapts a DateTimeField's value."""
    return connection.ops.adapt_datetimefield_value(value)


def saved(instance: Model) -> Model:
    """Mark an instance built in Python as stored (after a hand-written INSERT set its pk)."""
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
