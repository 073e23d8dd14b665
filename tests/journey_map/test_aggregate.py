"""Aggregation on the hand-built database (conftest.KNOWN): every number is known in advance."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from mapdata import SINCE, UNTIL, utc
from sqlalchemy.engine import Engine

from journey.errors import ConfigError
from journey.journey_map import build_map
from journey.journey_map.model import JourneyMap, StageSummary
from miner import default_taxonomy

TAXONOMY = default_taxonomy()


def _map(engine: Engine, **kwargs: object) -> JourneyMap:
    return build_map(engine, TAXONOMY, since=SINCE, until=UNTIL, **kwargs)


def _stage(jm: JourneyMap, name: str) -> StageSummary:
    return next(s for s in jm.stages if s.name == name)


def test_totals_exclude_deleted_and_out_of_period(known_db: Engine) -> None:
    jm = _map(known_db)
    assert jm.period.start == SINCE and jm.period.end == UNTIL
    assert jm.previous.start == utc(2024, 4, 8) and jm.previous.end == SINCE
    assert jm.conversations == 10  # x1 (deleted) and o1 (== until, exclusive) are out
    assert jm.previous_conversations == 3
    assert jm.staged == 8
    assert jm.unstaged == 2
    assert [s.name for s in jm.stages] == list(TAXONOMY.stage_names)


def test_stage_volume_share_change(known_db: Engine) -> None:
    jm = _map(known_db)
    purchase, delivery, awareness = (_stage(jm, n) for n in ("purchase", "delivery", "awareness"))
    assert (purchase.conversations, purchase.share, purchase.previous_conversations) == (4, 0.4, 1)
    assert purchase.change == 3.0
    assert (delivery.conversations, delivery.share, delivery.change) == (3, 0.3, 0.5)
    assert (awareness.conversations, awareness.share, awareness.change) == (1, 0.1, None)
    assert (_stage(jm, "support").conversations, _stage(jm, "support").change) == (0, 0.0)


def test_channels_and_sentiment(known_db: Engine) -> None:
    jm = _map(known_db)
    purchase = _stage(jm, "purchase")
    assert [(c.channel, c.conversations, c.share) for c in purchase.channels] == [
        ("email", 3, 0.75),
        ("chat", 1, 0.25),
    ]
    s = purchase.sentiment
    assert (s.n, s.mean, s.sd, s.negative_share) == (4, -0.2, 0.3651, 0.5)
    assert (s.ci_low, s.ci_high) == (-0.5578, 0.1578)
    assert purchase.previous_sentiment == -0.5
    delivery = _stage(jm, "delivery")
    assert [(c.channel, c.conversations) for c in delivery.channels] == [
        ("email", 1),
        ("phone", 1),
        ("web", 1),
    ]
    assert delivery.sentiment.mean == round((-0.8 - 0.2 + 0.4) / 3, 4)
    # the whole period: 9 classified conversations (u2 is not mined yet)
    assert jm.sentiment.n == 9
    assert jm.sentiment.mean == round((-0.6 - 0.4 + 0.2 + 0 - 0.8 - 0.2 + 0.4 + 0.5 - 0.1) / 9, 4)


def test_pain_points_counts_share_change(known_db: Engine) -> None:
    jm = _map(known_db)
    pains = {p.theme: p for p in _stage(jm, "purchase").pain_points}
    assert list(pains) == ["checkout_friction", "payment_failures"]  # ties by name
    pay = pains["payment_failures"]
    assert (pay.conversations, pay.share, pay.previous_conversations, pay.change) == (
        2,
        0.5,
        1,
        1.0,
    )
    assert (pay.mean_sentiment, pay.negative_share) == (-0.5, 1.0)
    checkout = pains["checkout_friction"]
    assert (checkout.conversations, checkout.previous_conversations, checkout.change) == (
        2,
        0,
        None,
    )
    assert checkout.mean_sentiment == -0.1
    delivery = [(p.theme, p.conversations) for p in _stage(jm, "delivery").pain_points]
    assert delivery == [("delays_and_waiting", 2), ("delivery_problems", 1)]
    overall = {t.theme: (t.conversations, t.previous_conversations) for t in jm.themes}
    assert overall == {
        "delays_and_waiting": (3, 1),  # d1, d2 and the unstaged u1
        "checkout_friction": (2, 0),
        "payment_failures": (2, 1),
        "delivery_problems": (1, 0),
    }


def test_heatmap_cells(known_db: Engine) -> None:
    jm = _map(known_db)
    cells = {(c.stage, c.theme): (c.conversations, c.mean_sentiment) for c in jm.heatmap}
    assert cells == {
        ("purchase", "payment_failures"): (2, -0.5),
        ("purchase", "checkout_friction"): (2, -0.1),
        ("delivery", "delays_and_waiting"): (2, -0.5),
        ("delivery", "delivery_problems"): (1, -0.8),
    }


def test_feedback_contrast(known_db: Engine) -> None:
    fb = _stage(_map(known_db), "purchase").feedback
    assert (fb.solicited, fb.solicited_sentiment) == (1, -0.6)
    assert (fb.unsolicited, fb.unsolicited_sentiment) == (3, -0.0667)


def test_verbatims_are_representative_and_redacted(known_db: Engine) -> None:
    jm = _map(known_db)
    purchase = _stage(jm, "purchase").verbatims
    assert [(v.external_id, v.theme, v.solicited) for v in purchase] == [
        ("c2", "checkout_friction", False),  # negative first: c3 scores higher but is positive
        ("c1", "payment_failures", False),
        ("c1", None, True),  # the CSAT comment of the most negative conversation
    ]
    assert purchase[1].text == "My card was declined twice at checkout, email me at [EMAIL]."
    assert purchase[2].text == "Terrible, nobody helped."
    delivery = _stage(jm, "delivery").verbatims
    assert [v.external_id for v in delivery] == ["d1"]  # d1 is not reused for its second theme
    everything = " ".join(v.text for s in jm.stages for v in s.verbatims)
    assert "DELETED TEXT" not in everything and "agent reply" not in everything


def test_actions_are_recurring_evidence_phrases(known_db: Engine) -> None:
    jm = _map(known_db)
    assert _stage(jm, "purchase").actions == ["card declined"]  # "checkout" is seen once only
    assert _stage(jm, "delivery").actions == []


def test_opportunity_ranking(known_db: Engine) -> None:
    jm = _map(known_db)
    ranked = [
        (o.rank, o.stage, o.theme, o.score, o.negative_conversations) for o in jm.opportunities
    ]
    # growth: (2 + 5) / (1 * 10/3 + 5) = 0.84 ; (2 + 5) / 5 = 1.4 ; (1 + 5) / 5 = 1.2
    assert ranked == [
        (1, "delivery", "delays_and_waiting", 1.68, 2),
        (2, "purchase", "payment_failures", 1.68, 2),
        (3, "purchase", "checkout_friction", 1.4, 1),
        (4, "delivery", "delivery_problems", 1.2, 1),
    ]
    assert [o.rank for o in _stage(jm, "purchase").opportunities] == [2, 3]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"source": "beta"}, 1),
        ({"source": "acme"}, 9),
        ({"channel": "email"}, 4),
        ({"segment": {"plan": "pro"}}, 3),
        ({"segment": {"plan": "7"}}, 1),  # a numeric custom field value matches its text
        ({"segment": {"plan": "pro", "channel": "chat"}}, 1),
        ({"segment": {"status": "open"}}, 10),
        ({"channel": "EMAIL"}, 4),  # case does not matter
        ({"segment": {"plan": "PRO"}}, 3),
    ],
)
def test_filters(known_db: Engine, kwargs: dict[str, object], expected: int) -> None:
    assert _map(known_db, **kwargs).conversations == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "nope"}, "unknown source 'nope': use acme, beta"),
        ({"channel": "fax"}, "unknown channel 'fax': use chat, email, phone, web"),
        ({"segment": {"plan": "gold"}}, "has plan=gold; values seen: 7, basic, pro"),
        ({"segment": {"tier": "x"}}, "no conversation has a field 'tier'; fields: channel, kind,"),
    ],
)
def test_unknown_filter_values_are_refused_with_the_valid_ones(
    known_db: Engine, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _map(known_db, **kwargs)


def test_weekly_trends(known_db: Engine) -> None:
    jm = _map(known_db)
    assert jm.weeks[-4:] == ["2024-05-06", "2024-05-13", "2024-05-20", "2024-05-27"]
    assert len(jm.weeks) == 12
    totals = {p.week: p.conversations for p in jm.weekly_totals}
    # c4 at Sunday 23:30 belongs to the week of Monday 05-06; d1 at Monday 00:00 to 05-13
    assert (totals["2024-05-06"], totals["2024-05-13"], totals["2024-05-20"]) == (4, 3, 3)
    delays = next(t for t in jm.trends if t.theme == "delays_and_waiting")
    counts = {p.week: p.conversations for p in delays.points if p.conversations}
    assert counts == {"2024-04-22": 1, "2024-05-13": 2, "2024-05-20": 1}
    assert jm.spikes == []  # far too few conversations to alarm


def test_default_period_comes_from_the_data(known_db: Engine) -> None:
    jm = build_map(known_db, TAXONOMY)
    # newest live conversation: o1 at 2024-06-03 00:00 → until is the next midnight
    assert jm.period.end == utc(2024, 6, 4)
    assert jm.period.start == utc(2024, 5, 7)


def test_empty_database(db: Engine) -> None:
    jm = build_map(db, TAXONOMY, since=SINCE, until=UNTIL)
    assert jm.conversations == 0 and jm.themes == [] and jm.opportunities == []
    assert all(s.conversations == 0 for s in jm.stages)
    assert jm.notice == (
        "no conversations in 2024-05-06 → 2024-06-02: the database has none yet; "
        "run `cjm sync` first"
    )


def test_a_never_synced_database_maps_this_month_not_1970(db: Engine) -> None:
    before = datetime.now(UTC)
    jm = build_map(db, TAXONOMY)
    assert jm.period.end > before and (jm.period.end - before).days < 2
    assert jm.notice.startswith("no conversations in ") and "1970" not in jm.notice


def test_segment_and_channel_maps_cover_the_weeks_of_the_unfiltered_map(known_db: Engine) -> None:
    everything = build_map(known_db, TAXONOMY)
    beta = build_map(known_db, TAXONOMY, source="beta")  # its newest conversation is 05-20
    chat = build_map(known_db, TAXONOMY, channel="chat")
    assert beta.period == chat.period == everything.period
    assert beta.period_note == (
        "default period: the 4 weeks up to the newest conversation in the database"
    )


def test_an_empty_filtered_period_says_so(known_db: Engine) -> None:
    jm = build_map(known_db, TAXONOMY, since=utc(2024, 1, 1), until=utc(2024, 2, 1), channel="chat")
    assert jm.notice == (
        "no conversations in 2024-01-01 → 2024-01-31 match these filters "
        "(the newest conversation in the database is from 2024-06-03)"
    )


def test_quotes_end_after_a_whole_sentence() -> None:
    from journey.journey_map.aggregate import _excerpt

    text = "The parcel never came. " * 30  # 690 characters
    assert _excerpt(text).endswith("The parcel never came.")
    assert len(_excerpt(text)) <= 480
    assert _excerpt("one very long sentence " * 40).endswith("…")  # no sentence end to cut at
