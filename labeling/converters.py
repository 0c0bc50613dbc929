"""The ``<id:...>`` path converter of every route that takes a database id.

Django's ``<int:...>`` matches any run of digits: ``/api/v1/projects/9223372036854775808/``
reached the database with an id SQLite's driver cannot bind (OverflowError, a 500), while
PostgreSQL answered 404. An id past the largest one a row can have matches no route here, so
both answer 404 (in JSON under /api/v1/). Registered by ``config.urls``.
"""

from __future__ import annotations

from labeling.safeinput import DB_ID_MAX


class DatabaseIdConverter:
    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > DB_ID_MAX:
            raise ValueError(f"{value} is past the largest database id")
        return number

    def to_url(self, value: int) -> str:
        return str(value)
