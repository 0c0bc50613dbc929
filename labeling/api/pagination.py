"""The API's pagination: DRF's limit/offset, with a largest page (``limit`` above it is clamped).

Without a cap, ``?limit=9223372036854775808`` reached the database as an out-of-range LIMIT (a
500 on SQLite and PostgreSQL alike). An offset past the end answers an empty page before any
row is read.
"""

from __future__ import annotations

from rest_framework import pagination

MAX_PAGE_SIZE = 1000


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = MAX_PAGE_SIZE
