"""The map's stored data (migration 0012: journey steps and daily rollups) give the same map as
the raw tables, on SQLite and PostgreSQL, and the store keeps them right through new
conversations, re-mining, deletion and a requester merge (a shared e-mail hash).

Each check compares the two paths the map can take: `CJM_MAP_RAW=1` (the raw tables: the
definition) and the stored data. The flows must be identical; in the whole map every count must
be identical and a sentiment figure may differ by one unit of its last (4th) decimal, because a
float sum taken day by day rounds differently from one taken in a single pass (a tie at the
rounding boundary can flip). The stored rows are also compared with a rebuild from scratch after
every store call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flowdata import SINCE, UNTIL, load_flows
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from synthetic import generate

from journey import store
from journey.journey_map import build_map, emotion_days, flows, journey_days, rollups, steps
from journey.journey_map.filters import resolve_period
from journey.journey_map.flows import FlowOptions, build_flows
from journey.journey_map.model import Filters, Period
from miner import Prediction, default_taxonomy

TAXONOMY = default_taxonomy()


def _flows(engine: Engine, period: Period, *, raw: bool, monkeypatch: Any) -> Any:
    monkeypatch.setenv("CJM_MAP_RAW", "1" if raw else "")
    with engine.connect() as conn:
        assert flows._stored(conn, Filters(), "requester") is (not raw)  # the path taken
        return build_flows(
            conn, period, Filters(), TAXONOMY.stage_names, str, str, FlowOptions(examples=5)
        )


def _same_both_ways(engine: Engine, periods: list[Period], monkeypatch: Any) -> None:
    for period in periods:
        raw = _flows(engine, period, raw=True, monkeypatch=monkeypatch)
        stored = _flows(engine, period, raw=False, monkeypatch=monkeypatch)
        assert stored == raw, period


def _snapshot(engine: Engine) -> list[list[Any]]:
    def rounded(row: Any) -> tuple[Any, ...]:
        return tuple(round(v, 9) if isinstance(v, float) else v for v in row)

    tables = []
    with engine.connect() as conn:
        for table in (steps.S, steps.ST, rollups.D, rollups.DT, journey_days.J, emotion_days.E):
            columns = [c for c in table.c if c.name != "id"]  # a rollup row's id is arbitrary
            rows = [rounded(r) for r in conn.execute(select(*columns))]
            tables.append(sorted(rows, key=repr))
    return tables


def _assert_in_step(engine: Engine) -> None:
    """The incrementally kept steps and rollups equal a rebuild from scratch."""
    kept = _snapshot(engine)
    with engine.begin() as conn:
        steps.rebuild(conn)
        rollups.rebuild(conn)
    assert _snapshot(engine) == kept


def _close(a: Any, b: Any, where: str = "map") -> None:
    """Equal, except floats (sentiment figures) within one unit of the 4th decimal."""
    if isinstance(a, float) and isinstance(b, float):
        assert abs(a - b) <= 1.5e-4 or abs(a - b) <= 1e-3 * abs(a), (where, a, b)
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b), where
        for name in a.__dataclass_fields__:
            _close(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _close(a[key], b[key], f"{where}[{key}]")
    else:
        assert a == b, (where, a, b)


def _same_maps(engine: Engine, monkeypatch: Any, **kwargs: Any) -> None:
    """The whole map from the raw tables and from the stored data (rollups read: asserted)."""
    monkeypatch.setenv("CJM_MAP_RAW", "1")
    raw = build_map(engine, TAXONOMY, **kwargs)
    monkeypatch.setenv("CJM_MAP_RAW", "")
    stored = build_map(engine, TAXONOMY, **kwargs)
    with engine.connect() as conn:
        assert rollups.in_step(conn) and steps.in_step(conn)
    assert stored.conversations == raw.conversations and stored.flows == raw.flows
    _close(stored, raw)


def test_hand_built_flows_are_the_same_from_the_steps(db: Engine, monkeypatch: Any) -> None:
    load_flows(db)
    steps.ensure(db)  # what `cjm map` does on a database filled by other means than the sync
    periods = [Period(SINCE, UNTIL), Period(SINCE - timedelta(days=60), UNTIL)]
    _same_both_ways(db, periods, monkeypatch)
    journeys, found = _flows(db, periods[0], raw=False, monkeypatch=monkeypatch)
    assert journeys.merged == 1 and found.churn.count == 2 and found.repeats.count == 1


def test_filtered_and_organisation_maps_take_the_raw_path(db: Engine) -> None:
    load_flows(db)
    steps.ensure(db)
    with db.connect() as conn:
        assert flows._stored(conn, Filters(), "requester")
        assert not flows._stored(conn, Filters(channel="email"), "requester")
        assert not flows._stored(conn, Filters(segment={"plan": "pro"}), "requester")
        assert not flows._stored(conn, Filters(), "organisation")


def test_steps_out_of_step_are_not_read_and_ensure_rebuilds(db: Engine, monkeypatch: Any) -> None:
    load_flows(db)
    with db.connect() as conn:  # bulk-loaded: no steps yet, so the flows read the raw tables
        assert not steps.in_step(conn) and not flows._stored(conn, Filters(), "requester")
    steps.ensure(db)
    with db.connect() as conn:
        assert steps.in_step(conn)


def _prediction(stage: str | None, sentiment: float, themes: tuple[str, ...]) -> Prediction:
    return Prediction(
        stage=stage,
        stage_confidence=0.9,
        themes=themes,
        theme_scores=dict.fromkeys(themes, 0.8),
        evidence=(),
        sentiment=sentiment,
        language="en",
    )


def test_the_store_keeps_the_steps_through_sync_mining_deletion_and_merge(
    db: Engine, monkeypatch: Any
) -> None:
    generate(db, 3_000, seed=11)
    steps.ensure(db)
    end = datetime(2024, 7, 1, tzinfo=UTC)
    periods = [resolve_period(db, None, None), Period(end - timedelta(weeks=27), end)]
    _same_both_ways(db, periods, monkeypatch)
    _same_maps(db, monkeypatch, since=periods[1].start)
    with db.connect() as conn:
        sources = dict(conn.execute(text("SELECT name, id FROM source")).all())
        busiest = conn.execute(
            text(
                "SELECT source_id, requester_id FROM conversation GROUP BY source_id, "
                "requester_id ORDER BY count(*) DESC, source_id, requester_id LIMIT 6"
            )
        ).all()
        recent = [
            int(i)
            for i in conn.execute(
                text("SELECT id FROM conversation ORDER BY created_at DESC, id LIMIT 40")
            ).scalars()
        ]
    acme, eu = sources["acme"], sources["acme-eu"]

    # a merge: one person on both helpdesks (the same hashed e-mail), then a second hash change
    with Session(db) as session:
        for source_id, requester in busiest[:4]:
            store.set_email_hashes(session, source_id, {requester: "a" * 64})
        session.commit()
    _assert_in_step(db)
    _same_both_ways(db, periods, monkeypatch)
    _same_maps(db, monkeypatch)
    with Session(db) as session:
        source_id, requester = busiest[0]
        store.set_email_hashes(session, source_id, {requester: "b" * 64})  # leaves the merge
        session.commit()
    _assert_in_step(db)

    # re-mining: stages, sentiment and themes change (and one conversation loses its stage)
    with Session(db) as session:
        mined = [
            (cid, "h", _prediction(stage, sentiment, themes))
            for cid, stage, sentiment, themes in zip(
                recent[:12],
                ["purchase", "delivery", None, "support"] * 3,
                [-0.6, 0.4, -0.2] * 4,
                [("delays_and_waiting",), (), ("payment_failures", "delays_and_waiting")] * 4,
                strict=True,
            )
        ]
        store.save_classifications(session, "test", mined)
        session.commit()
    _assert_in_step(db)
    _same_both_ways(db, periods, monkeypatch)
    _same_maps(db, monkeypatch)

    # deletion (a tombstone) and a sync that adds conversations and moves one to a new requester
    with Session(db) as session:
        store.purge_conversations(session, recent[12:20])
        new = [
            {
                "external_id": f"new-{i}",
                "kind": "ticket",
                "channel": "email",
                "subject": None,
                "status": "open",
                "requester_id": busiest[i % 6][1],
                "organization_id": None,
                "created_at": end - timedelta(days=3 + i),
                "updated_at": end - timedelta(days=3 + i),
                "tags": [],
                "custom_fields": {},
                "deleted": False,
            }
            for i in range(6)
        ]
        store.upsert_conversations(session, acme, new)
        store.upsert_conversations(session, eu, [{**new[0], "external_id": "new-eu"}])
        session.commit()
        ids = store.conversation_ids(session, acme, [row["external_id"] for row in new])
        store.save_classifications(
            session,
            "test",
            [
                (cid, "h", _prediction("support", -0.7, ("delays_and_waiting",)))
                for cid in ids.values()
            ],
        )
        store.upsert_conversations(session, acme, [{**new[1], "requester_id": "someone-else"}])
        store.upsert_messages(  # a CSAT comment arrives: the day's CSAT contrast changes
            session,
            acme,
            [
                {
                    "external_id": f"csat-{cid}",
                    "conversation_id": cid,
                    "author_id": "r1",
                    "author_role": "end_user",
                    "public": True,
                    "solicited": True,
                    "channel": "email",
                    "created_at": end - timedelta(days=2),
                    "text": "It took far too long.",
                    "redacted": True,
                }
                for cid in recent[20:24]
            ],
        )
        session.commit()
    _assert_in_step(db)
    _same_both_ways(db, periods, monkeypatch)
    _same_maps(db, monkeypatch)


@pytest.mark.parametrize("weeks", [4, 27])
def test_synthetic_flows_are_the_same_from_the_steps(
    db: Engine, monkeypatch: Any, weeks: int
) -> None:
    generate(db, 4_000, seed=5)
    steps.ensure(db)
    end = resolve_period(db, None, None).end
    _same_both_ways(db, [Period(end - timedelta(weeks=weeks), end)], monkeypatch)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"since": datetime(2024, 1, 1, tzinfo=UTC)},  # the whole history
        {"channel": "email"},
        {"source": "acme-eu", "since": datetime(2024, 4, 1, tzinfo=UTC)},
    ],
)
def test_synthetic_maps_are_the_same_from_the_rollups(
    db: Engine, monkeypatch: Any, options: dict[str, Any]
) -> None:
    generate(db, 4_000, seed=5)
    _same_maps(db, monkeypatch, **options)


def test_segments_and_times_of_day_scan_the_raw_tables(db: Engine) -> None:
    generate(db, 500, seed=3)
    rollups.ensure(db)
    midnight = datetime(2024, 6, 1, tzinfo=UTC)
    with db.connect() as conn:
        assert rollups.usable(conn, Filters(channel="email"), midnight)
        assert not rollups.usable(conn, Filters(segment={"status": "open"}), midnight)
        assert not rollups.usable(conn, Filters(), midnight + timedelta(hours=9))
