"""One `cjm sync` per source at a time, enforced by the database, released even by kill -9.

PostgreSQL: a session-level advisory lock held on a dedicated connection for the whole run; the
server drops it when the connection dies, so a killed sync never leaves a stale lock behind.
SQLite: an exclusive `flock` on a file beside the database file; the kernel drops it when the
process dies. Neither blocks readers: analysts keep querying while a sync writes.

The same lock serialises `cjm serve`'s worker batches with the nightly sync. A batch holds it for
seconds, so `cjm sync` waits a little for it (`wait_seconds`) instead of giving up at once; a
sync that finds another *sync* running still gives up after that wait (exit 75, try later).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from journey.errors import SyncLockedError

LOCK_NAMESPACE = 0x636A6D  # "cjm": keeps our advisory keys apart from other applications'
LOCK_WAIT_SECONDS = 30.0  # `cjm sync`'s default wait: a worker batch holds a source for seconds
MAX_PAUSE_SECONDS = 1.0  # between two tries while waiting: a freed lock is taken within a second

Release = Callable[[], None]


def _advisory_key(source: str) -> int:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


EX_TEMPFAIL = 75  # sysexits.h: "try again later"; the exit code of a sync that found it busy
_BUSY = "another `cjm sync` (or a `cjm worker` batch) is already running for source "


def _locked_message(source: str, waited: float) -> str:
    after = f" after waiting {waited:g} s" if waited > 0 else ""
    return f"{_BUSY}{source!r}{after}; wait for it to finish (this run changed nothing)"


def is_busy(error: str | None) -> bool:
    """Whether a source's error (SourceReport.error) is the busy lock, not a failure: cron
    wrappers get EX_TEMPFAIL for it and can tell "busy" from "failed"."""
    return error is not None and error.startswith(_BUSY)


@contextmanager
def sync_lock(
    engine: Engine,
    source: str,
    *,
    wait_seconds: float = 0.0,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold the per-source sync lock. When another process holds it, try again for up to
    `wait_seconds` (calling `on_wait` once, so a person knows why nothing moves), then raise
    SyncLockedError. Waiting is outside the `with` body: an error the body raises is never
    mistaken for a busy lock."""
    release = _acquire(engine, source, wait_seconds, on_wait)
    try:
        yield
    finally:
        release()


def _acquire(
    engine: Engine, source: str, wait_seconds: float, on_wait: Callable[[], None] | None
) -> Release:
    try_once = {"postgresql": _try_postgres, "sqlite": _try_sqlite}.get(engine.dialect.name)
    if try_once is None:  # pragma: no cover - only SQLite and PostgreSQL are supported
        return lambda: None
    deadline = time.monotonic() + wait_seconds
    pause = 0.05
    told = False
    while True:
        release = try_once(engine, source)
        if release is not None:
            return release
        left = deadline - time.monotonic()
        if left <= 0:
            raise SyncLockedError(_locked_message(source, wait_seconds))
        if on_wait is not None and not told:
            on_wait()
            told = True
        time.sleep(min(pause, left))
        pause = min(pause * 2, MAX_PAUSE_SECONDS)


MAP_UPKEEP_KEY = 0x6D6170  # "map": the one advisory key of the map's derived tables


def hold_map_upkeep(conn: Any) -> None:
    """Serialise writers of the map's derived tables until this transaction ends (PostgreSQL).

    The stored journeys and daily rollups are shared by every source (a day's rows, a customer
    merged across helpdesks), and the store keeps them by read-recompute-write. Two transactions
    doing that at once — `cjm serve`'s workers on two sources — would each miss the other's rows
    (a duplicate day fact, or counts added twice). A transaction-scoped advisory lock taken just
    before those writes makes the second wait for the first to commit; under READ COMMITTED its
    next statements then see the first's rows. Nothing else takes it, so no deadlock: the
    holder only touches the derived tables after it. SQLite has one writer at a time anyway.
    `conn`: a Connection or a Session."""
    if _dialect(conn) == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :key)"),
            {"ns": LOCK_NAMESPACE, "key": MAP_UPKEEP_KEY},
        )


def _dialect(conn: Any) -> str:
    bind = conn.get_bind() if hasattr(conn, "get_bind") else conn
    return str(bind.dialect.name)


def _try_postgres(engine: Engine, source: str) -> Release | None:
    key = {"ns": LOCK_NAMESPACE, "key": _advisory_key(source)}
    connection = engine.connect()
    try:
        got = connection.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), key).scalar_one()
        connection.commit()
    except BaseException:
        connection.close()
        raise
    if not got:
        connection.close()
        return None

    def release() -> None:
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), key)
            connection.commit()
        finally:
            connection.close()

    return release


def _try_sqlite(engine: Engine, source: str) -> Release | None:
    database = engine.url.database or ""
    if database in ("", ":memory:"):
        return lambda: None  # a private in-memory database cannot be shared by two processes
    safe = hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
    path = Path(f"{database}.sync-{safe}.lock")
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        return None
    except BaseException:
        os.close(handle)
        raise
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()}\n".encode())

    def release() -> None:
        try:
            fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)

    return release
