"""Journeys and flows on a hand-built database (flowdata.FLOWS) where every path, move, repeat
and churn signal is known, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from flowdata import EXPECTED_MOVES, EXPECTED_PATHS, SINCE, UNTIL, load_flows
from sqlalchemy.engine import Engine

from journey.journey_map import build_map
from journey.journey_map.model import JourneyMap
from miner import default_taxonomy


@pytest.fixture
def flow_map(db: Engine) -> JourneyMap:
    load_flows(db)
    return build_map(db, default_taxonomy(), since=SINCE, until=UNTIL)


def test_moves_between_consecutive_staged_conversations(flow_map: JourneyMap) -> None:
    flows = flow_map.flows
    assert {(link.source, link.target): link.moves for link in flows.links} == EXPECTED_MOVES
    assert (flows.moves, flows.previous_moves, flows.change) == (6, 1, 5.0)
    direction = {(link.source, link.target): link.direction for link in flows.links}
    assert direction[("delivery", "purchase")] == "backward"
    assert direction[("delivery", "delivery")] == "same"
    assert direction[("exploration", "purchase")] == "forward"
    to_support = next(lk for lk in flows.links if (lk.source, lk.target) == ("delivery", "support"))
    assert (to_support.previous_moves, to_support.change) == (1, 0.0)  # F, last period


def test_a_move_back_to_an_earlier_stage_is_a_backwards_move(flow_map: JourneyMap) -> None:
    back = flow_map.flows.backwards
    assert back is not None
    assert (back.count, back.previous, back.customers) == (1, 0, 1)
    assert [(b.key, b.count) for b in back.breakdown] == [("purchase", 1)]
    (example,) = back.examples
    assert [s.external_id for s in example.steps] == ["a1", "a2", "a3", "a4", "a5"]
    assert example.steps[0].quote == "sentence of a1"
    assert re.fullmatch(r"customer [0-9a-f]{8}", example.customer)  # opaque: no helpdesk id


def test_three_contacts_on_one_theme_are_a_repeat(flow_map: JourneyMap) -> None:
    repeats = flow_map.flows.repeats
    assert repeats is not None
    assert (repeats.count, repeats.previous, repeats.change, repeats.customers) == (1, 0, None, 1)
    assert [(b.key, b.count) for b in repeats.breakdown] == [("delays_and_waiting", 1)]
    assert [s.external_id for s in repeats.examples[0].steps] == ["b1", "b2", "b3"]


def test_churn_signal_counts_when_the_silent_days_run_out(flow_map: JourneyMap) -> None:
    churn = flow_map.flows.churn
    assert churn is not None
    # D (04-10) and G (04-12, its later conversation is deleted) now; C (04-01) before
    assert (churn.count, churn.previous, churn.customers) == (2, 1, 2)
    assert [(b.key, b.count) for b in churn.breakdown] == [("purchase", 2)]
    # one example per stage of the last contact (both purchase here): the smaller key, D
    assert [s.external_id for e in churn.examples for s in e.steps] == ["d1"]
    assert flow_map.flows.churn_pending == 1  # B's last contact, 19 days before the period end


def test_churn_days_are_configurable(db: Engine) -> None:
    from journey.journey_map.aggregate import MapOptions
    from journey.journey_map.flows import FlowOptions

    load_flows(db)
    jm = build_map(
        db, default_taxonomy(), since=SINCE, until=UNTIL,
        options=MapOptions(flows=FlowOptions(churn_days=10)),
    )  # fmt: skip
    churn = jm.flows.churn
    assert churn is not None
    # 10 days: signals confirmed 05-06..06-03 come from contacts of 04-26..05-24 with 10 silent
    # days after: a3? no (a4 two days later); b3 (05-15, silent to 06-03); nothing else negative
    assert (churn.count, jm.flows.churn_pending) == (1, 0)
    assert [s.external_id for s in churn.examples[0].steps][-1] == "b3"


def test_journeys_merge_one_email_across_sources(flow_map: JourneyMap) -> None:
    journeys = flow_map.journeys
    assert journeys.customers == 3  # A, B and E (two requesters, one hashed e-mail); not H
    assert journeys.previous_customers == 3  # D, F, G
    assert journeys.returning == 3
    assert (journeys.conversations, journeys.staged_conversations) == (10, 9)
    assert journeys.merged == 1
    assert {tuple(p.stages) for p in journeys.paths} == EXPECTED_PATHS
    assert all(p.customers == 1 and p.longer == 0 for p in journeys.paths)


def test_json_carries_journeys_and_flows(flow_map: JourneyMap) -> None:
    data = flow_map.to_dict()
    assert data["journeys"]["customers"] == 3
    assert data["flows"]["churn"]["count"] == 2
    assert data["flows"]["links"][0].keys() >= {"source", "target", "moves", "direction"}
    step = data["flows"]["backwards"]["examples"][0]["steps"][0]
    assert step["created_at"] == "2024-05-07T00:00:00Z"


def test_journeys_by_organisation_follow_the_organisation(db: Engine) -> None:
    from journey.journey_map.aggregate import MapOptions
    from journey.journey_map.flows import FlowOptions

    load_flows(db)
    jm = build_map(
        db, default_taxonomy(), since=SINCE, until=UNTIL,
        options=MapOptions(flows=FlowOptions(by="organisation")),
    )  # fmt: skip
    # A and B (organisation o1) interleave: purchase a1, delivery b1, delivery a2, delivery b2,
    # purchase a3, support b3, support a5; E (no organisation) stays a requester
    assert {(lk.source, lk.target): lk.moves for lk in jm.flows.links} == {
        ("purchase", "delivery"): 1,
        ("delivery", "delivery"): 2,
        ("delivery", "purchase"): 1,
        ("purchase", "support"): 1,
        ("support", "support"): 1,
        ("exploration", "purchase"): 1,
    }
    assert jm.journeys.customers == 2
    assert jm.flows.repeats is not None and jm.flows.repeats.count == 1  # o1: delays x3
