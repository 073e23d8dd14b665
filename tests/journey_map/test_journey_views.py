"""The journey analyst views (migration 0010) on the hand-built flow database, SQLite and
PostgreSQL: every customer's conversations in order, merged across sources by hashed e-mail,
kept correct when a conversation is re-mined or deleted."""

from __future__ import annotations

import json

from flowdata import SHARED_HASH, load_flows
from sqlalchemy import text
from sqlalchemy.engine import Engine

from journey.journey_views import JOURNEY_VIEWS, create_journey_views, drop_journey_views


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_create_journey_views_is_idempotent(db: Engine) -> None:
    assert create_journey_views(db) == list(JOURNEY_VIEWS)
    assert create_journey_views(db) == list(JOURNEY_VIEWS)
    drop_journey_views(db)
    drop_journey_views(db)


def test_customer_journey_orders_each_customers_conversations(db: Engine) -> None:
    load_flows(db)
    create_journey_views(db)
    rows = _rows(
        db,
        "SELECT external_id, step, stage, previous_stage, round(days_since_previous) "
        "FROM v_customer_journey WHERE customer = '1:a' ORDER BY step",
    )
    assert rows == [
        ("a1", 1, "purchase", None, None),
        ("a2", 2, "delivery", "purchase", 3),
        ("a3", 3, "purchase", "delivery", 4),
        ("a4", 4, None, "purchase", 2),
        ("a5", 5, "support", None, 4),
    ]


def test_one_email_on_two_helpdesks_is_one_customer(db: Engine) -> None:
    load_flows(db)
    create_journey_views(db)
    rows = _rows(
        db,
        "SELECT customer, source, requester_id, step, previous_stage FROM v_customer_journey "
        "WHERE external_id IN ('e1', 'e2') ORDER BY step",
    )
    key = f"e:{SHARED_HASH}"
    assert rows == [
        (key, "acme", "e1", 1, None),
        (key, "beta", "e2", 2, "exploration"),
    ]
    stored = _rows(db, "SELECT email_hash FROM person WHERE email_hash IS NOT NULL")
    assert all(len(str(h)) == 64 and "@" not in str(h) for (h,) in stored)


def test_deleted_and_anonymous_conversations_are_in_no_journey(db: Engine) -> None:
    load_flows(db)
    create_journey_views(db)
    ids = {r[0] for r in _rows(db, "SELECT external_id FROM v_customer_journey")}
    assert "g2" not in ids  # deleted
    assert "h1" not in ids  # no requester
    assert len(ids) == 15  # 17 conversations less those two


def test_a_remined_or_deleted_conversation_moves_the_journey(db: Engine) -> None:
    load_flows(db)
    create_journey_views(db)
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE classification SET stage = 'consideration' WHERE conversation_id = "
                "(SELECT id FROM conversation WHERE external_id = 'a2')"
            )
        )
        conn.execute(text("UPDATE conversation SET deleted = true WHERE external_id = 'a1'"))
    rows = _rows(
        db,
        "SELECT external_id, step, stage, previous_stage FROM v_customer_journey "
        "WHERE customer = '1:a' AND step <= 2 ORDER BY step",
    )
    assert rows == [("a2", 1, "consideration", None), ("a3", 2, "purchase", "consideration")]


def test_conversation_emotion_has_a_row_per_emotion(db: Engine) -> None:
    load_flows(db)
    emotions = [
        {"emotion": "frustration_anger", "score": 0.8, "sentence": "Third time I ask."},
        {"emotion": "worry", "score": 0.4, "sentence": "Will it ever come?"},
    ]
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE classification SET emotions = :e WHERE conversation_id = "
                "(SELECT id FROM conversation WHERE external_id = 'b3')"
            ),
            {"e": json.dumps(emotions)},
        )
    create_journey_views(db)
    rows = _rows(
        db,
        "SELECT external_id, stage, sentiment_band, emotion, score, sentence "
        "FROM v_conversation_emotion WHERE external_id IN ('b3', 'b2') "
        "ORDER BY external_id, score DESC",
    )
    assert rows == [
        ("b2", "delivery", "negative", None, None, None),
        ("b3", "support", "negative", "frustration_anger", 0.8, "Third time I ask."),
        ("b3", "support", "negative", "worry", 0.4, "Will it ever come?"),
    ]
    strongest = _rows(db, "SELECT emotion FROM v_customer_journey WHERE external_id = 'b3'")
    assert strongest == [("frustration_anger",)]
