"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import journey.models  # noqa: F401
from journey.db import migrate


def test_migrated_schema_matches_models(engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_migrate_is_idempotent(engine) -> None:
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"conversation", "message", "classification", "writeback", "sync_run"} <= tables


def test_analyst_views_exist_after_migration(engine) -> None:
    views = set(inspect(engine).get_view_names())
    assert {"v_conversation_theme_week", "v_theme_week", "v_stage_sentiment"} <= views


def test_journey_views_exist_after_migration(engine) -> None:
    views = set(inspect(engine).get_view_names())
    assert {"v_customer_journey", "v_conversation_emotion"} <= views
