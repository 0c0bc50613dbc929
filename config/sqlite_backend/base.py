"""SQLite with a fair write lock: writers queue on a lock file, not in SQLite's busy handler.

SQLite lets one writer in at a time. A writer that finds the database locked sleeps in its busy
handler (1, 2, 5, … 100 ms) and retries, so under contention the lock often sits free while
every waiter sleeps, and an unlucky writer keeps losing the race (the 2-3 s p99 of the queue
benchmark). Here every IMMEDIATE/EXCLUSIVE transaction first takes an exclusive ``flock`` on
``<database>.writelock``, one open file per connection (so it works between threads and between
processes alike); the kernel wakes a waiter the moment the holder commits or rolls back.
SQLite's own locking still guards correctness; this only orders the writers. In-memory
databases (the test suite's) and DEFERRED transactions are left as Django has them.

The wait is bounded by the database ``timeout`` option (settings: 20 s), as SQLite's busy handler
would be: a writer still waiting then gets ``OperationalError("database is locked: …")``, which the
API answers with 503 and a JSON reason. ``flock`` itself cannot time out, so a contended wait runs
in a thread of its own on a file description of its own; given up, that thread lets the lock go
the moment it gets it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

DEFAULT_TIMEOUT_S = 5.0  # sqlite3.connect's own default, when OPTIONS has no timeout


class _LockWait:
    """One writer's wait for the lock file, in a daemon thread, that can be given up."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._got = threading.Event()
        self._mutex = threading.Lock()
        self._given_up = False
        threading.Thread(target=self._wait, name="sqlite-write-lock", daemon=True).start()

    def _wait(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        with self._mutex:
            if self._given_up:
                os.close(self.fd)  # closing the file description lets the lock go
                return
            self._got.set()

    def got_lock(self, timeout: float) -> bool:
        """True when the lock came within ``timeout`` seconds; otherwise the wait is given up."""
        if self._got.wait(timeout):
            return True
        with self._mutex:
            self._given_up = not self._got.is_set()
            return not self._given_up


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
        path = f"{self.settings_dict['NAME']}.writelock"
        if self._write_lock_fd is None:
            self._write_lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._write_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            timeout = float(self.settings_dict["OPTIONS"].get("timeout", DEFAULT_TIMEOUT_S))
            wait = _LockWait(path)
            if not wait.got_lock(timeout):
                raise OperationalError(
                    f"database is locked: another writer has held the write lock for over "
                    f"{timeout:g} s (e.g. a long import); try again"
                ) from None
            # The lock is held through the wait's file description: it becomes this
            # connection's (the old one held nothing).
            os.close(self._write_lock_fd)
            self._write_lock_fd = wait.fd
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
