"""SQLite with a fair write lock: writers queue on a lock file, not in SQLite's busy handler.

SQLite lets one writer in at a time. A writer that finds the database locked sleeps in its busy
handler (1, 2, 5, … 100 ms) and retries, so under contention the lock often sits free while
every waiter sleeps, and an unlucky writer keeps losing the race (the 2-3 s p99 of the queue
benchmark). Here every IMMEDIATE/EXCLUSIVE transaction first takes an exclusive ``flock`` on
``<database>.writelock``, one open file per connection (so it works between threads and between
processes alike); the kernel wakes a waiter the moment the holder commits or rolls back.
SQLite's own locking still guards correctness; this only orders the writers. In-memory
databases (the test suite's) and DEFERRED transactions are left as Django has them.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock_fd: int | None = None
        self._write_lock_held = False

    def _uses_write_lock(self) -> bool:
        mode = str(self.settings_dict["OPTIONS"].get("transaction_mode") or "").upper()
        return mode in ("IMMEDIATE", "EXCLUSIVE") and not self.is_in_memory_db()

    def _acquire_write_lock(self) -> None:
        if self._write_lock_held or not self._uses_write_lock():
            return
        if self._write_lock_fd is None:
            path = f"{self.settings_dict['NAME']}.writelock"
            self._write_lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._write_lock_fd, fcntl.LOCK_EX)
        self._write_lock_held = True

    def _release_write_lock(self) -> None:
        if self._write_lock_held and self._write_lock_fd is not None:
            fcntl.flock(self._write_lock_fd, fcntl.LOCK_UN)
        self._write_lock_held = False

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire_write_lock()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]
        finally:
            self._release_write_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]
        finally:
            self._release_write_lock()

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]
        finally:
            self._release_write_lock()
            if self._write_lock_fd is not None:
                os.close(self._write_lock_fd)
                self._write_lock_fd = None
