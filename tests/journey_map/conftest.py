"""Fixtures: an empty theme database on SQLite and (when configured) PostgreSQL, and the
hand-built one of `mapdata.KNOWN`.

`db` is parametrised: the SQLite case always runs; the PostgreSQL case runs when
CJM_TEST_POSTGRES_URL is set, each test in its own throw-away schema, and is skipped with a
reason otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mapdata import KNOWN, load
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from journey.db import make_engine

PG_ENV = "CJM_TEST_POSTGRES_URL"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    """An empty theme database (schema from the models) on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'map.db'}")
        SQLModel.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL to test against")
    yield from _postgres_schema(url)


def _postgres_schema(url: str) -> Iterator[Engine]:
    schema = f"cjm_map_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(admin.url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        SQLModel.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def known_db(db: Engine) -> Engine:
    load(db, KNOWN)
    return db
