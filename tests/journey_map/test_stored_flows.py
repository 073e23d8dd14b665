"""The flows summed from the steps' daily facts (`stored_flows.py`, migration 0013) equal the raw
tables' answer for any whole-day period: at the start of the data, in its middle (both edges
corrected), at its end, the whole history; and after the store changed journeys (re-mining,
deletion, a merge: `test_steps.py` checks those on the same paths)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from synthetic import generate
from test_steps import _same_both_ways

from journey.journey_map import aggregate, emotion_days, rollups, steps, stored_flows
from journey.journey_map.filters import resolve_period
from journey.journey_map.model import Filters, Period


def test_daily_flows_equal_the_raw_flows_at_every_edge(db: Engine, monkeypatch: Any) -> None:
    generate(db, 5_000, seed=17)
    steps.ensure(db)
    rollups.ensure(db)
    with db.connect() as conn:
        edges = stored_flows.Edges(conn)
    first = edges.first.replace(tzinfo=UTC) if edges.first.tzinfo is None else edges.first
    start = datetime.combine(first.date(), datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(weeks=27)
    periods = [
        Period(start, start + timedelta(weeks=4)),  # nothing before it
        Period(start + timedelta(weeks=9), start + timedelta(weeks=13)),  # data on both sides
        Period(start + timedelta(weeks=5), start + timedelta(weeks=22)),  # long, in the middle
        Period(end - timedelta(weeks=6), end),  # nothing after it
        Period(start, end),  # the whole history
    ]
    for period in periods:
        assert stored_flows.usable(period, 30)
    assert edges.before(periods[1].start) and edges.at_or_after(periods[1].end)
    assert not edges.before(periods[0].start) and not edges.at_or_after(periods[3].end)
    _same_both_ways(db, periods, monkeypatch)


def test_times_of_day_and_other_churn_windows_take_the_step_queries() -> None:
    midnight = datetime(2024, 3, 4, tzinfo=UTC)
    assert stored_flows.usable(Period(midnight, midnight + timedelta(days=7)), 30)
    assert not stored_flows.usable(Period(midnight, midnight + timedelta(hours=30)), 30)
    assert not stored_flows.usable(Period(midnight, midnight + timedelta(days=7)), 14)


EMOTIONS = ["frustration_anger", "confusion", "worry", "relief_satisfaction"]


def test_emotion_days_give_the_raw_emotion_lane(db: Engine) -> None:
    """Emotions with ties in score, short sentences and none at all: the days' best showings
    equal the ranking over the period, for whole-day periods with and without filters."""
    generate(db, 3_000, seed=19)
    rng = random.Random(5)
    with db.begin() as conn:
        ids = [int(i) for i in conn.execute(text("SELECT conversation_id FROM classification"))
               .scalars()]  # fmt: skip
        rows = []
        for cid in ids:
            shown = [
                {"emotion": e, "score": rng.choice([0.5, 0.75, 0.9]),
                 "sentence": rng.choice(["Ugh!", "Where is my parcel, really?", None,
                                         f"I waited {rng.randint(2, 9)} days for this."])}
                for e in rng.sample(EMOTIONS, rng.randint(0, 2))
            ]  # fmt: skip
            rows.append({"cid": cid, "shown": json.dumps(shown) if shown or cid % 2 else None})
        conn.execute(
            text("UPDATE classification SET emotions = :shown WHERE conversation_id = :cid"),
            rows,
        )
    with db.begin() as conn:  # as `cjm map` would after a bulk load
        rollups.rebuild(conn)
    default = resolve_period(db, None, None)
    periods = [default, Period(default.end - timedelta(weeks=30), default.end),
               Period(default.start - timedelta(weeks=8), default.start)]  # fmt: skip
    for period in periods:
        for filters in (Filters(), Filters(channel="email"), Filters(source="acme-eu")):
            with db.connect() as conn:
                raw = aggregate._emotions(conn, period, filters)
                days = emotion_days.read(conn, period, filters)
            assert days == raw, (period, filters)
            assert sum(n for shown in raw.values() for _e, n, _q in shown) > 0
