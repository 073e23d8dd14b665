"""The flows summed from the steps' daily facts (`stored_flows.py`, migration 0013) equal the raw
tables' answer for any whole-day period: at the start of the data, in its middle (both edges
corrected), at its end, the whole history; and after the store changed journeys (re-mining,
deletion, a merge: `test_steps.py` checks those on the same paths)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from synthetic import generate
from test_steps import _same_both_ways

from journey.journey_map import rollups, steps, stored_flows
from journey.journey_map.model import Period


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
