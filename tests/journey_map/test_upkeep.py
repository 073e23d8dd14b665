"""The store recomputes the map's stored rows (journey steps, daily rollups) only for
conversations whose map-relevant fields changed (`journey_map.upkeep`), and the map's quotes and
key-phrase sample read in index order give what a ranking over every conversation gives.

Writes are counted with a statement listener on the engine: a store call that changes nothing
the map reads must issue no INSERT/UPDATE/DELETE on the stored tables at all, and one that does
must leave them equal to a rebuild from scratch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from synthetic import generate
from test_steps import _assert_in_step, _prediction

from journey import store
from journey.journey_map import aggregate, rollups, steps, upkeep
from journey.journey_map.filters import resolve_period
from journey.journey_map.model import Filters, Period
from journey.models import Conversation
from miner.emotion import EmotionEvidence

STORED = ("journey_step", "journey_theme_step", "map_day", "map_theme_day", "map_emotion_day")
C = Conversation.__table__


@contextmanager
def _writes_to_stored_tables(engine: Engine) -> Iterator[list[str]]:
    """Every INSERT/UPDATE/DELETE statement on the map's stored tables while the block runs."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        head = statement.lstrip().split(None, 1)[0].upper()
        if head in ("INSERT", "UPDATE", "DELETE") and any(t in statement for t in STORED):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def _synced_rows(engine: Engine, ids: list[int], **changes: Any) -> tuple[int, list[dict]]:
    """The conversations as a sync would store them again (same fields unless `changes`)."""
    columns = ["external_id", "kind", "channel", "subject", "status", "requester_id",
               "organization_id", "created_at", "updated_at", "tags", "custom_fields",
               "deleted"]  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(
            select(C.c.source_id, *(C.c[name] for name in columns)).where(C.c.id.in_(ids))
        ).all()
    source_id = int(rows[0][0])
    return source_id, [
        {**dict(zip(columns, row[1:], strict=True)), **changes}
        for row in rows
        if int(row[0]) == source_id
    ]


def _prepared(db: Engine) -> list[int]:
    generate(db, 1_500, seed=13)
    steps.ensure(db)  # what `cjm map` does after a bulk load
    rollups.ensure(db)
    with db.connect() as conn:
        return [
            int(i)
            for i in conn.execute(
                text("SELECT id FROM conversation ORDER BY created_at DESC, id LIMIT 30")
            ).scalars()
        ]


def test_a_sync_that_changes_only_tags_and_updated_at_writes_no_stored_row(db: Engine) -> None:
    recent = _prepared(db)
    source_id, rows = _synced_rows(db, recent[:20])
    later = datetime(2030, 1, 1, tzinfo=UTC)
    rows = [{**row, "updated_at": later, "tags": ["cjm_stage_purchase"]} for row in rows]
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.upsert_conversations(session, source_id, rows)
        session.commit()
    assert writes == []

    # a channel change touches the daily rollups only; a new requester the journeys only
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.upsert_conversations(session, source_id, [{**rows[0], "channel": "chat"}])
        session.commit()
    assert writes and not any("journey_step" in w for w in writes)
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.upsert_conversations(session, source_id, [{**rows[1], "requester_id": "moved"}])
        session.commit()
    assert any("journey_step" in w for w in writes) and not any("map_day" in w for w in writes)
    _assert_in_step(db)


def test_re_mining_to_the_same_answer_writes_nothing_and_a_new_stage_does(db: Engine) -> None:
    recent = _prepared(db)
    with Session(db) as session:
        rows = session.execute(
            text(
                "SELECT conversation_id, stage, sentiment FROM classification "
                "WHERE conversation_id IN (" + ",".join(map(str, recent[:10])) + ")"
            )
        ).all()
        themes_by_id = store.themes_of(session, [int(r[0]) for r in rows])
    stored = [(cid, stage, sentiment, themes_by_id[int(cid)]) for cid, stage, sentiment in rows]
    same = [
        (int(cid), "h2", _prediction(stage, float(sentiment), tuple(themes)))
        for cid, stage, sentiment, themes in stored
    ]
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.save_classifications(session, "again", same)
        session.commit()
    assert writes == []

    cid, stage, sentiment, themes = stored[0]
    moved = "support" if stage != "support" else "purchase"
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.save_classifications(
            session, "again", [(int(cid), "h3", _prediction(moved, float(sentiment), ()))]
        )
        session.commit()
    assert any("journey_step" in w for w in writes) and any("map_day" in w for w in writes)
    _assert_in_step(db)

    # a new emotion only: the emotion days, not the journeys
    felt = replace(
        _prediction(moved, float(sentiment), ()),
        emotions=(EmotionEvidence("worry", 0.8, "Will it ever arrive at all?", 0.8),),
    )
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.save_classifications(session, "again", [(int(cid), "h4", felt)])
        session.commit()
    assert any("map_emotion_day" in w for w in writes)
    assert not any("journey_step" in w for w in writes)
    _assert_in_step(db)


def test_a_second_purge_a_known_hash_and_a_second_csat_comment_write_nothing(
    db: Engine,
) -> None:
    recent = _prepared(db)
    with Session(db) as session:
        store.purge_conversations(session, recent[:2])
        session.commit()
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.purge_conversations(session, recent[:2])
        session.commit()
    assert writes == []

    source_id, rows = _synced_rows(db, recent[5:6])
    requester = rows[0]["requester_id"]
    with Session(db) as session:
        store.set_email_hashes(session, source_id, {requester: "c" * 64})
        session.commit()
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.set_email_hashes(session, source_id, {requester: "c" * 64})
        session.commit()
    assert writes == []

    def comment(n: int) -> dict[str, Any]:
        return {
            "external_id": f"csat-{recent[8]}-{n}",
            "conversation_id": recent[8],
            "author_id": "r1",
            "author_role": "end_user",
            "public": True,
            "solicited": True,
            "channel": "email",
            "created_at": datetime(2024, 6, 30, tzinfo=UTC),
            "text": "Slow.",
            "redacted": True,
        }

    with Session(db) as session:
        store.upsert_messages(session, source_id, [comment(1)])  # the first one counts
        session.commit()
    with _writes_to_stored_tables(db) as writes, Session(db) as session:
        store.upsert_messages(session, source_id, [comment(2)])
        session.commit()
    assert writes == []
    _assert_in_step(db)


def test_refresh_counts_only_the_changed_conversations(db: Engine) -> None:
    recent = _prepared(db)
    with Session(db) as session:
        before = upkeep.snapshot(session, recent[:10])
        assert upkeep.refresh(session, recent[:10], before) == upkeep.Refreshed(0, 0)
        session.execute(
            C.update().where(C.c.id == recent[0]).values(channel="web")  # rollups only
        )
        session.execute(
            C.update()
            .where(C.c.id == recent[1])
            .values(created_at=datetime(2024, 1, 5, tzinfo=UTC))  # both
        )
        assert upkeep.refresh(session, recent[:10], before) == upkeep.Refreshed(1, 2)
        session.commit()
    _assert_in_step(db)


# ---- quotes and key-phrase sample: index order gives the ranking's answer ----------------------


def _periods(db: Engine) -> list[tuple[Period, Filters]]:
    default = resolve_period(db, None, None)
    whole = Period(datetime(2023, 12, 1, tzinfo=UTC), default.end)
    return [
        (default, Filters()),
        (whole, Filters()),
        (whole, Filters(channel="email")),
        (Period(default.end - timedelta(weeks=10), default.end), Filters(segment={"plan": "pro"})),
    ]


def test_phrase_sample_walked_by_residue_equals_the_ranking(db: Engine, monkeypatch: Any) -> None:
    generate(db, 6_000, seed=21)
    scramble = (aggregate.C.c.id * aggregate.SCRAMBLE_BY) % aggregate.SCRAMBLE_MOD
    for lookups in (150_000, 700):  # 700: the walk stops early, the rest take the ranking
        monkeypatch.setattr(aggregate, "PHRASE_LOOKUPS", lookups)
        for period, filters in _periods(db):
            with db.connect() as conn:
                walked = aggregate._phrase_sample_by_residue(conn, period, filters)
                prefiltered = aggregate._phrase_sample_ranked(conn, period, filters)
                ranked = aggregate._phrase_sample(conn, period, filters, scramble, [])
            assert sorted(walked, key=repr) == sorted(ranked, key=repr), (period, filters)
            assert sorted(prefiltered, key=repr) == sorted(ranked, key=repr), (period, filters)
            assert len(ranked) > 0


def test_quotes_in_index_order_equal_a_full_ranking(db: Engine) -> None:
    generate(db, 4_000, seed=22)
    with db.begin() as conn:  # a few pairs with fewer than three negative conversations
        conn.execute(text("UPDATE classification SET sentiment = 0.3 WHERE stage = 'awareness'"))
    for period, filters in _periods(db):
        with db.connect() as conn:
            rows = conn.execute(
                select(aggregate.C.c.id, aggregate.K.c.stage, aggregate.T.c.theme,
                       aggregate.K.c.sentiment, aggregate.T.c.score)
                .select_from(
                    aggregate.C.join(aggregate.K, aggregate.K.c.conversation_id == aggregate.C.c.id)
                    .join(aggregate.T, aggregate.T.c.conversation_id == aggregate.C.c.id)
                )
                .where(*aggregate._where(period, filters), aggregate.K.c.stage.is_not(None))
            ).all()  # fmt: skip
            by_pair: dict[tuple[str, str], list[Any]] = defaultdict(list)
            for cid, stage, theme, sentiment, score in rows:
                by_pair[(stage, theme)].append((sentiment >= -0.05, -score, sentiment, cid))
            for (stage, theme), ranked in sorted(by_pair.items()):
                expected = [r[3] for r in sorted(ranked)[:3]]
                found = aggregate._verbatim_candidates(conn, period, filters, stage, theme)
                assert [row[0] for row in found] == expected, (stage, theme)
                assert [row[7] for row in found] == list(range(1, len(expected) + 1))
                ranked = aggregate._ranked_candidates(conn, period, filters, [(stage, theme)], [])
                assert sorted(ranked, key=repr) == sorted(found, key=repr), (stage, theme)
