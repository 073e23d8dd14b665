"""A conversation's themes live once, as `conversation_theme` rows (migration 0014): read back in
the miner's order, survive the migration down (re-filling `classification.themes`) and up again,
and `v_customer_journey` shows them as the same JSON array on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from journey.db import alembic_config, session_scope
from journey.store import (
    conversation_ids,
    ensure_source,
    save_classifications,
    themes_of,
    upsert_conversations,
)
from miner import Prediction

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# not alphabetical: the miner's order (strongest first) is what must come back
MINED = {
    "1": ("delivery", {"delays_and_waiting": 0.9, "billing_and_payment": 0.7}),
    "2": ("purchase", {}),
    "3": ("support", {"refunds_and_returns": 0.95, "account_access": 0.5, "app_bugs": 0.4}),
}


def _prediction(stage: str, scores: dict[str, float]) -> Prediction:
    return Prediction(
        stage=stage,
        stage_confidence=0.9,
        themes=tuple(scores),
        theme_scores=scores,
        evidence=(),
        sentiment=0.0,
        language="en",
    )


def _mine(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        source = ensure_source(session, "acme", "zendesk", "http://x")
        assert source.id is not None
        upsert_conversations(
            session,
            source.id,
            [
                {
                    "external_id": ext,
                    "kind": "ticket",
                    "channel": "email",
                    "subject": "s",
                    "status": "open",
                    "requester_id": "9",
                    "created_at": T0,
                    "updated_at": T0,
                    "tags": [],
                    "custom_fields": {},
                    "deleted": False,
                }
                for ext in [*MINED, "4"]  # 4 is never mined
            ],
        )
        ids = conversation_ids(session, source.id, [*MINED, "4"])
        save_classifications(
            session,
            "v1",
            [(ids[ext], "h", _prediction(stage, scores)) for ext, (stage, scores) in MINED.items()],
        )
    return ids


def _expected(ids: dict[str, int]) -> dict[int, list[str]]:
    return {ids[ext]: list(scores) for ext, (_, scores) in MINED.items()}


def _view_themes(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT external_id, themes FROM v_customer_journey"))
        return {ext: json.loads(t) if isinstance(t, str) else t for ext, t in rows}


def test_themes_are_read_back_in_the_miners_order(engine: Engine) -> None:
    ids = _mine(engine)
    with session_scope(engine) as session:
        assert themes_of(session, ids.values()) == {**_expected(ids), ids["4"]: []}
        assert themes_of(session, []) == {}
    columns = {c["name"] for c in inspect(engine).get_columns("classification")}
    assert "themes" not in columns  # one home: the rows


def test_the_journey_view_lists_the_theme_rows(engine: Engine) -> None:
    _mine(engine)
    assert _view_themes(engine) == {
        "1": ["delays_and_waiting", "billing_and_payment"],
        "2": [],  # mined, no themes
        "3": ["refunds_and_returns", "account_access", "app_bugs"],
        "4": None,  # not mined
    }


def test_themes_survive_the_migration_down_and_up(engine: Engine) -> None:
    ids = _mine(engine)
    config = alembic_config(engine)
    command.downgrade(config, "0014-1")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT conversation_id, themes FROM classification")).all()
    stored = {cid: json.loads(t) if isinstance(t, str) else t for cid, t in rows}
    assert stored == _expected(ids)
    assert _view_themes(engine)["3"] == ["refunds_and_returns", "account_access", "app_bugs"]

    command.upgrade(config, "head")
    columns = {c["name"] for c in inspect(engine).get_columns("classification")}
    assert "themes" not in columns
    with session_scope(engine) as session:
        assert themes_of(session, ids.values()) == {**_expected(ids), ids["4"]: []}
    assert _view_themes(engine)["1"] == ["delays_and_waiting", "billing_and_payment"]
