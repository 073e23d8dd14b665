"""Engine, migrations and sessions. The only module that knows which database we are on.

`open_database()` upgrades the schema in place (Alembic) before anything else touches it, so a
deployed SQLite file or PostgreSQL schema follows the code without a manual step.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from journey.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"database url {url!r} is not a valid SQLAlchemy URL; e.g. sqlite:///cjm.db "
            "or postgresql+psycopg://user@host/db ([database].url or CJM_DATABASE_URL)"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"connect_args": {"timeout": 30}}
    try:
        engine = create_engine(parsed, **kwargs)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"no driver for {parsed.drivername}: {exc.name} is not installed"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it already is)."""
    try:
        command.upgrade(alembic_config(engine), "head")
    except OperationalError as exc:
        raise ConfigError(
            f"cannot open the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0]}; check [database].url or CJM_DATABASE_URL"
        ) from None


SQLITE_HEADER = b"SQLite format 3\x00"


def open_database(url: str) -> Engine:
    """The engine for `url`, checked and migrated. A SQLite file that is not a database, or is
    damaged, is refused before anything is written to it (a usage error: the url points at the
    wrong file, or the file needs restoring)."""
    engine = make_engine(url)
    check_sqlite_file(engine)
    migrate(engine)
    return engine


def check_sqlite_file(engine: Engine) -> None:
    """Refuse an existing SQLite file that is not a SQLite database (read its 16-byte header
    without opening it) or that fails `PRAGMA quick_check` (damaged pages, a truncated copy)."""
    if engine.dialect.name != "sqlite":
        return
    database = engine.url.database or ""
    path = Path(database).expanduser()
    if database in ("", ":memory:") or not path.is_file() or path.stat().st_size == 0:
        return  # new (or in-memory) databases are created by the migrations
    fix = "check [database].url or CJM_DATABASE_URL, or restore the file from a backup"
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise ConfigError(f"{path} is not a SQLite database: {fix}")
    try:  # read-only and without the engine's pragmas: a damaged file is never written to
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as raw:
            problems = [row[0] for row in raw.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is a damaged SQLite database ({exc}): {fix}") from None
    if problems != ["ok"]:
        first = str(problems[0]).splitlines()[0]
        raise ConfigError(f"{path} is a damaged SQLite database ({first}): {fix}")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
