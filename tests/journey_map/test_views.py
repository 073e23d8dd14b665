"""The analyst views on SQLite and PostgreSQL: created idempotently, same numbers as the map."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from journey.views import VIEWS, create_views, drop_views


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_create_views_is_idempotent(known_db: Engine) -> None:
    assert create_views(known_db) == list(VIEWS)
    assert create_views(known_db) == list(VIEWS)
    drop_views(known_db)
    drop_views(known_db)
    create_views(known_db)


def test_theme_week(known_db: Engine) -> None:
    create_views(known_db)
    rows = _rows(
        known_db,
        "SELECT week, conversations, negative_conversations FROM v_theme_week "
        "WHERE theme = 'delays_and_waiting' ORDER BY week",
    )
    assert rows == [("2024-04-22", 1, 1), ("2024-05-13", 2, 2), ("2024-05-20", 1, 1)]
    rows = _rows(
        known_db,
        "SELECT week, conversations FROM v_theme_week WHERE theme = 'payment_failures' "
        "ORDER BY week",
    )
    # p1 (04-08 week), c1 + c2 (05-06; deleted x1 excluded), o1 (06-03)
    assert rows == [("2024-04-08", 1), ("2024-05-06", 2), ("2024-06-03", 1)]


def test_conversation_theme_week(known_db: Engine) -> None:
    create_views(known_db)
    rows = _rows(
        known_db,
        "SELECT external_id, source, week, stage, theme FROM v_conversation_theme_week "
        "WHERE external_id IN ('c2', 'c4', 'd1', 'u2', 'x1') ORDER BY external_id, theme",
    )
    assert rows == [
        ("c2", "acme", "2024-05-06", "purchase", "checkout_friction"),
        ("c2", "acme", "2024-05-06", "purchase", "payment_failures"),
        ("c4", "acme", "2024-05-06", "purchase", None),  # Sunday 23:30 UTC: week of Monday 05-06
        ("d1", "acme", "2024-05-13", "delivery", "delays_and_waiting"),
        ("d1", "acme", "2024-05-13", "delivery", "delivery_problems"),
        ("u2", "acme", "2024-05-20", None, None),  # not mined yet
    ]


def test_stage_sentiment(known_db: Engine) -> None:
    create_views(known_db)
    rows = _rows(
        known_db,
        "SELECT sentiment_band, conversations FROM v_stage_sentiment "
        "WHERE stage = 'purchase' AND week = '2024-05-06' ORDER BY sentiment_band",
    )
    assert rows == [("negative", 2), ("neutral", 1), ("positive", 1)]
