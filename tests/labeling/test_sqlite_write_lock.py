"""The SQLite backend's fair write lock (config/sqlite_backend): writers queue on a lock file.

The queue's writers (claims, submits) run IMMEDIATE transactions; with a file database each takes
an exclusive ``flock`` first and gives it back at commit or rollback, so a waiting writer is woken
at once instead of sleeping in SQLite's busy handler.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection, connections
from rest_framework.test import APIClient

from config.sqlite_backend.base import DatabaseWrapper
from labeling import services
from labeling.models import Project

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only"),
]


def _wrapper(
    path: Path, alias: str, mode: str = "IMMEDIATE", timeout: float = 20
) -> DatabaseWrapper:
    settings = {
        **connections.settings["default"],
        "ENGINE": "config.sqlite_backend",
        "NAME": str(path),
        "OPTIONS": {"transaction_mode": mode, "timeout": timeout},
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


def test_writer_gives_up_after_the_database_timeout(tmp_path: Path) -> None:
    """The lock wait is bounded by OPTIONS["timeout"], like SQLite's busy handler: then
    "database is locked", holding nothing; once the holder commits, writers get in again."""
    first = _wrapper(tmp_path / "db.sqlite3", "holder")
    first.ensure_connection()
    first.cursor().execute("CREATE TABLE t (x INTEGER)")
    first._start_transaction_under_autocommit()
    second = _wrapper(tmp_path / "db.sqlite3", "waiter", timeout=0.3)
    second.ensure_connection()
    started = time.monotonic()
    with pytest.raises(OperationalError, match=r"database is locked: .* over 0\.3 s"):
        second._start_transaction_under_autocommit()
    waited = time.monotonic() - started
    assert 0.3 <= waited < 5, waited
    assert not second._write_lock_held and second.in_atomic_block is False
    first._commit()
    # The given-up wait let the lock go: the second writer (and the first) get it at once.
    second._start_transaction_under_autocommit()
    second.cursor().execute("INSERT INTO t VALUES (2)")
    second._commit()
    first._start_transaction_under_autocommit()
    assert first.cursor().execute("SELECT x FROM t").fetchall() == [(2,)]
    first._rollback()
    for wrapper in (first, second):
        wrapper._close()


def _locked_error(tmp_path: Path) -> OperationalError:
    """The error the backend raises when a writer waited past its timeout."""
    holder = _wrapper(tmp_path / "db.sqlite3", "holder2")
    holder.ensure_connection()
    holder._start_transaction_under_autocommit()
    waiter = _wrapper(tmp_path / "db.sqlite3", "waiter2", timeout=0.1)
    waiter.ensure_connection()
    try:
        waiter._start_transaction_under_autocommit()
    except OperationalError as error:
        return error
    finally:
        holder._rollback()
        holder._close()
        waiter._close()
    raise AssertionError("the waiter got the lock while it was held")


def test_api_answers_503_with_a_reason_when_the_database_is_locked(
    tmp_path: Path, annotator: Any, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = _locked_error(tmp_path)
    api = APIClient()
    api.force_authenticate(user=annotator)

    def locked(**kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(services, "assignment_claim_next", locked)
    response = api.post(f"/api/v1/projects/{project.pk}/queue/next/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["error"].startswith("the database is busy with another write")
    assert body["field"] is None and "database is locked" in body["detail"]
