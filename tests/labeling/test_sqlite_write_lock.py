"""The SQLite backend's fair write lock (config/sqlite_backend): writers queue on a lock file.

The queue's writers (claims, submits) run IMMEDIATE transactions; with a file database each takes
an exclusive ``flock`` first and gives it back at commit or rollback, so a waiting writer is woken
at once instead of sleeping in SQLite's busy handler.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from config.sqlite_backend.base import DatabaseWrapper

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only"),
]


def _wrapper(path: Path, alias: str, mode: str = "IMMEDIATE") -> DatabaseWrapper:
    settings = {
        **connections.settings["default"],
        "ENGINE": "config.sqlite_backend",
        "NAME": str(path),
        "OPTIONS": {"transaction_mode": mode, "timeout": 20},
    }
    return DatabaseWrapper(settings, alias=alias)


def test_second_writer_waits_for_the_first_to_commit(tmp_path: Path) -> None:
    first = _wrapper(tmp_path / "db.sqlite3", "writer1")
    first.ensure_connection()
    first.cursor().execute("CREATE TABLE t (x INTEGER)")
    first._start_transaction_under_autocommit()
    first.cursor().execute("INSERT INTO t VALUES (1)")
    assert (tmp_path / "db.sqlite3.writelock").exists()
    began = threading.Event()
    seen: list[Any] = []

    def second_writer() -> None:
        second = _wrapper(tmp_path / "db.sqlite3", "writer2")
        second.ensure_connection()
        second._start_transaction_under_autocommit()  # blocks on the lock file
        began.set()
        seen.append(second.cursor().execute("SELECT COUNT(*) FROM t").fetchone()[0])
        second._rollback()
        second._close()

    thread = threading.Thread(target=second_writer)
    thread.start()
    assert not began.wait(0.3), "the second writer got in while the first held the lock"
    first._commit()
    assert began.wait(10), "the second writer was not woken by the commit"
    thread.join(10)
    assert seen == [1]
    # Given back: the first connection can write again at once.
    first._start_transaction_under_autocommit()
    first._rollback()
    first._close()
    assert first._write_lock_fd is None and not first._write_lock_held


def test_lock_released_when_begin_fails(tmp_path: Path) -> None:
    writer = _wrapper(tmp_path / "db.sqlite3", "writer3")
    writer.ensure_connection()
    writer.connection.execute("BEGIN")  # BEGIN IMMEDIATE will now fail: already in a transaction
    with pytest.raises(Exception, match="transaction"):
        writer._start_transaction_under_autocommit()
    assert not writer._write_lock_held
    writer._rollback()
    writer._close()


def test_memory_and_deferred_databases_take_no_lock(tmp_path: Path) -> None:
    assert not _wrapper(Path(":memory:"), "memory")._uses_write_lock()
    assert not _wrapper(tmp_path / "db.sqlite3", "deferred", mode="DEFERRED")._uses_write_lock()
    assert _wrapper(tmp_path / "db.sqlite3", "immediate")._uses_write_lock()
