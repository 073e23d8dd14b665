"""One `cjm sync` per source at a time, enforced by the database, released even by kill -9.

PostgreSQL: a session-level advisory lock held on a dedicated connection for the whole run; the
server drops it when the connection dies, so a killed sync never leaves a stale lock behind.
SQLite: an exclusive `flock` on a file beside the database file; the kernel drops it when the
process dies. Neither blocks readers: analysts keep querying while a sync writes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from journey.errors import SyncLockedError

LOCK_NAMESPACE = 0x636A6D  # "cjm": keeps our advisory keys apart from other applications'


def _advisory_key(source: str) -> int:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


EX_TEMPFAIL = 75  # sysexits.h: "try again later"; the exit code of a sync that found it busy
_BUSY = "another `cjm sync` is already running for source "


def _locked_message(source: str) -> str:
    return f"{_BUSY}{source!r}; wait for it to finish (this run changed nothing)"


def is_busy(error: str | None) -> bool:
    """Whether a source's error (SourceReport.error) is the busy lock, not a failure: cron
    wrappers get EX_TEMPFAIL for it and can tell "busy" from "failed"."""
    return error is not None and error.startswith(_BUSY)


@contextmanager
def sync_lock(engine: Engine, source: str) -> Iterator[None]:
    """Hold the per-source sync lock, or raise SyncLockedError at once (never wait)."""
    if engine.dialect.name == "postgresql":
        with _postgres_lock(engine, source):
            yield
    elif engine.dialect.name == "sqlite":
        with _sqlite_lock(engine, source):
            yield
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        yield


@contextmanager
def _postgres_lock(engine: Engine, source: str) -> Iterator[None]:
    key = _advisory_key(source)
    with engine.connect() as connection:
        got = connection.execute(
            text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": LOCK_NAMESPACE, "key": key}
        ).scalar_one()
        connection.commit()
        if not got:
            raise SyncLockedError(_locked_message(source))
        try:
            yield
        finally:
            connection.execute(
                text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": LOCK_NAMESPACE, "key": key}
            )
            connection.commit()


@contextmanager
def _sqlite_lock(engine: Engine, source: str) -> Iterator[None]:
    database = engine.url.database or ""
    if database in ("", ":memory:"):
        yield  # a private in-memory database cannot be shared by two processes
        return
    safe = hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
    path = Path(f"{database}.sync-{safe}.lock")
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncLockedError(_locked_message(source)) from None
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)
