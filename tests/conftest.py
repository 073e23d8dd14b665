"""Shared fixtures: databases (SQLite always, PostgreSQL when CJM_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from journey.db import make_engine, migrate

POSTGRES_URL = os.environ.get("CJM_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("CJM_REQUIRE_POSTGRES") == "1"


def _postgres_engine() -> Iterator[Engine]:
    """A fresh schema per test, so tests never see each other's rows."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("CJM_REQUIRE_POSTGRES=1 but CJM_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured: set CJM_TEST_POSTGRES_URL (CI does)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - report any connection failure the same way
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL at CJM_TEST_POSTGRES_URL is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    engine = make_engine(f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """A migrated, empty theme database on each backend."""
    if request.param == "sqlite":
        db = make_engine(f"sqlite:///{tmp_path / 'cjm.db'}")
        migrate(db)
        yield db
        db.dispose()
    else:
        for db in _postgres_engine():
            migrate(db)
            yield db


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    db = make_engine(f"sqlite:///{tmp_path / 'cjm.db'}")
    migrate(db)
    yield db
    db.dispose()
