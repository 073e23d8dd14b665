"""A realistic synthetic theme database, for the map benchmark, the browser test and design work.

Test data, so it lives with the tests (bench/map_speed.py imports it too), not in the shipped
`journey` package. Why not in the simulator: the journey map needs mined data (stages, themes,
sentiment) in volumes no sync can produce quickly (a million conversations), with *known*
structure — a planted volume spike (payment failures at purchase) and a planted sentiment drop
(delivery problems) in the last full week — so a screenshot or a benchmark exercises every
lane, and a reader can check that the map finds what was planted. Seeded, so the same arguments
give the same database.

SQLite files are filled through the raw DB-API `executemany` (hundreds of thousands of rows per
second); other databases through SQLAlchemy Core.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine

from journey.models import Classification, Conversation, ConversationTheme, Message, Source

STAGES: dict[str, float] = {
    "awareness": 5,
    "exploration": 10,
    "consideration": 12,
    "purchase": 18,
    "delivery": 22,
    "support": 28,
}
UNSTAGED = 0.05
CHANNELS: dict[str, dict[str, float]] = {
    "awareness": {"social": 35, "web": 30, "email": 20, "chat": 15},
    "exploration": {"web": 40, "chat": 30, "email": 30},
    "consideration": {"chat": 40, "email": 35, "phone": 15, "web": 10},
    "purchase": {"chat": 35, "email": 30, "phone": 20, "web": 15},
    "delivery": {"email": 45, "phone": 25, "chat": 20, "messaging": 10},
    "support": {"email": 40, "chat": 25, "phone": 20, "messaging": 10, "mobile": 5},
}
THEMES: dict[str, dict[str, float]] = {
    "awareness": {"missing_or_confusing_information": 50, "usability_and_navigation": 20,
                  "app_and_site_errors": 10, "": 20},
    "exploration": {"missing_or_confusing_information": 40, "usability_and_navigation": 25,
                    "app_and_site_errors": 15, "fees_and_billing_errors": 10, "": 10},
    "consideration": {"fees_and_billing_errors": 30, "missing_or_confusing_information": 30,
                      "cancellation": 15, "agent_service_quality": 10, "": 15},
    "purchase": {"payment_failures": 30, "checkout_friction": 30, "fees_and_billing_errors": 15,
                 "account_access": 10, "app_and_site_errors": 10, "": 5},
    "delivery": {"delays_and_waiting": 45, "delivery_problems": 35, "agent_service_quality": 10,
                 "missing_or_confusing_information": 10},
    "support": {"refunds_and_returns": 25, "product_defects": 20, "account_access": 15,
                "agent_service_quality": 15, "cancellation": 10, "delays_and_waiting": 10,
                "security_and_fraud": 5},
}  # fmt: skip
SENTIMENT: dict[str, float] = {
    "": 0.25,
    "delays_and_waiting": -0.45,
    "refunds_and_returns": -0.3,
    "fees_and_billing_errors": -0.3,
    "payment_failures": -0.4,
    "checkout_friction": -0.25,
    "account_access": -0.3,
    "missing_or_confusing_information": -0.05,
    "product_defects": -0.4,
    "delivery_problems": -0.35,
    "cancellation": -0.2,
    "security_and_fraud": -0.5,
    "agent_service_quality": -0.45,
    "usability_and_navigation": -0.15,
    "app_and_site_errors": -0.3,
}
PHRASES: dict[str, tuple[str, ...]] = {
    "": ("asking about", "quick question on", "wanted to know about"),
    "delays_and_waiting": ("still waiting", "no reply yet", "on hold for ages"),
    "refunds_and_returns": ("refund not received", "return label missing", "send it back"),
    "fees_and_billing_errors": ("charged twice", "an unexpected fee", "a wrong invoice"),
    "payment_failures": ("card declined", "payment failed", "transaction error"),
    "checkout_friction": ("coupon not accepted", "stuck at checkout", "cannot place the order"),
    "account_access": ("cannot log in", "password reset fails", "account locked"),
    "missing_or_confusing_information": ("compare plans", "does it include", "hard to follow"),
    "product_defects": ("stopped working", "arrived broken", "keeps crashing"),
    "delivery_problems": ("wrong item", "parcel lost", "tracking not updating"),
    "cancellation": ("cancel my subscription", "close my account", "end the contract"),
    "security_and_fraud": ("suspicious login", "unknown device", "phishing email"),
    "agent_service_quality": ("nobody answers", "the agent was rude", "asked three times"),
    "usability_and_navigation": ("cannot find it", "the menu is confusing", "lost in settings"),
    "app_and_site_errors": ("error 500", "page will not load", "app crashes"),
}
TEXTS: dict[str, tuple[str, ...]] = {
    "": ("Hi, {p} the premium plan: does it come with the extended warranty?",
         "Hello, {p} shipping: do you deliver to Canada and how long does it take?"),
    "delays_and_waiting": ("{P} for an answer; {d} days since my first email.",
                           "Order [ORDER], {p}. You promised 48 hours, it is day {d} now."),
    "refunds_and_returns": ("My return arrived {d} days ago, {p}. Please check order [ORDER].",
                            "I want to {p}, but the returns form refuses my order number."),
    "fees_and_billing_errors": ("Invoice [INVOICE]: {p} this month, please fix it.",
                                "My statement shows {p} and nobody explained it."),
    "payment_failures": ("{P} three times at checkout although the bank says all is fine.",
                         "{P} again with card [CARD], I have tried two browsers."),
    "checkout_friction": ("Checkout again: {p}, and the basket empties on the last step.",
                          "{P}: the address form rejects my postcode."),
    "account_access": ("{P} since yesterday, the reset email never arrives at [EMAIL].",
                       "{P} after the update, please help me get back in."),
    "missing_or_confusing_information": ("I wanted to {p}, but the pricing page is vague.",
                                         "About the bundle, {p} the case? The table is {p2}."),
    "product_defects": ("The device {p} after {d} days and will not switch on anymore.",
                        "Bad news: {p}, the screen was cracked in the box."),
    "delivery_problems": ("Order [ORDER]: {p}. It shows delivered but the box is not mine.",
                          "Problem with my order, {p}; the courier says delivered, nothing here."),
    "cancellation": ("Please {p} today; the website loops back to the offers page.",
                     "How do I {p}? I was told it can only be done by phone."),
    "security_and_fraud": ("{P} alert and a purchase I never made. Please freeze the card.",
                           "Something is off: {p} from another country on my account."),
    "agent_service_quality": ("Really, {p} on the phone and the chat closes on me.",
                              "I {p} about the same thing and still no solution."),
    "usability_and_navigation": ("I looked everywhere, {p}: where is the invoice download now?",
                                 "Honestly, {p}. Where do I change my delivery address?"),
    "app_and_site_errors": ("I get '{p}' every time I open my orders page.",
                            "Since the last update: {p}, right on start."),
}  # fmt: skip
CSAT = (
    "Took far too long to get an answer.",
    "The agent was friendly but the problem is not solved.",
    "Quick and helpful, thank you!",
    "I had to repeat myself three times.",
    "Fine.",
)
PLANS = ("basic", "pro", "business")
REGIONS = ("EU", "US", "APAC")


@dataclass(frozen=True, slots=True)
class Planted:
    """What the generator plants in the last full week, for readers to check the map against."""

    week: datetime  # Monday 00:00 UTC of the week
    volume_theme: str = "payment_failures"  # × `volume_factor` at purchase that week
    volume_factor: float = 3.0
    sentiment_theme: str = "delivery_problems"  # sentiment shifted by `sentiment_shift`
    sentiment_shift: float = -0.35


def generate(
    engine: Engine,
    conversations: int,
    *,
    seed: int = 7,
    end: datetime = datetime(2024, 6, 30, tzinfo=UTC),
    weeks: int = 26,
    batch: int = 50_000,
) -> Planted:
    """Fill an empty theme database with `conversations` synthetic mined conversations spread
    over `weeks` weeks before `end`; returns what was planted."""
    rng = random.Random(seed)
    start = end - timedelta(weeks=weeks)
    last_monday = datetime(end.year, end.month, end.day, tzinfo=UTC) - timedelta(days=end.weekday())
    planted = Planted(week=last_monday - timedelta(weeks=1))
    with engine.begin() as conn:
        sources = {}
        for name in ("acme", "acme-eu"):
            sources[name] = conn.execute(
                insert(Source.__table__).values(
                    name=name, kind="zendesk", base_url=f"https://{name}.example", created_at=start
                )
            ).inserted_primary_key[0]
        first_id = (conn.execute(select(Conversation.id).order_by(Conversation.id.desc()))
                    .scalars().first() or 0) + 1  # fmt: skip
    rows = _rows(rng, conversations, start, end, planted, sources, first_id)
    for chunk in _chunks(rows, batch):
        _insert(engine, chunk)
    if engine.dialect.name == "postgresql":  # ids were written here: move the sequence on, so
        with engine.begin() as conn:  # a later store of new conversations does not collide
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('conversation', 'id'), max(id)) "
                     "FROM conversation")
            )  # fmt: skip
    return planted


@dataclass(slots=True)
class _Row:
    conversation: tuple[Any, ...]
    classification: tuple[Any, ...]
    themes: list[tuple[Any, ...]]
    messages: list[tuple[Any, ...]]


def _rows(
    rng: random.Random,
    count: int,
    start: datetime,
    end: datetime,
    planted: Planted,
    sources: dict[str, int],
    first_id: int,
) -> Iterator[_Row]:
    span = (end - start).total_seconds()
    # Requesters come from their own generator, so every other value matches older runs: about
    # three conversations per customer, so journeys, flows and churn signals have data.
    customers = random.Random(first_id * 7919 + count)
    pool = max(1, count // 3)
    stage_names, stage_weights = list(STAGES), list(STAGES.values())
    spike_end = planted.week + timedelta(weeks=1)
    # Ids follow creation time, as after a real sync (the incremental exports return tickets in
    # time order): a period's rows are then neighbours on disk, as they would be in production.
    times = sorted(_created(rng, start, span) for _ in range(count))
    for offset, created in enumerate(times):
        cid = first_id + offset
        stage = rng.choices(stage_names, stage_weights)[0]
        theme_map = THEMES[stage]
        primary = rng.choices(list(theme_map), list(theme_map.values()))[0]
        in_spike = planted.week <= created < spike_end
        if in_spike and stage == "purchase" and rng.random() < 1 - 1 / planted.volume_factor:
            primary = planted.volume_theme
        themes = [primary] if primary else []
        if primary and rng.random() < 0.3:
            second = rng.choices(list(theme_map), list(theme_map.values()))[0]
            if second and second != primary:
                themes.append(second)
        base = SENTIMENT[primary] + (0.1 if stage in ("awareness", "exploration") else 0.0)
        if in_spike and planted.sentiment_theme in themes:
            base += planted.sentiment_shift
        sentiment = max(-1.0, min(1.0, rng.gauss(base, 0.32)))
        channel = rng.choices(list(CHANNELS[stage]), list(CHANNELS[stage].values()))[0]
        source = "acme-eu" if rng.random() < 0.2 else "acme"
        abstained = rng.random() < UNSTAGED
        fields = {"plan": rng.choice(PLANS), "region": rng.choice(REGIONS)}
        created_s = created
        conversation = (
            cid, sources[source], f"S{cid}", "ticket", channel, "solved" if rng.random() < 0.7
            else "open", created_s, created_s, "[]", json.dumps(fields), False, False, created_s,
            f"r{customers.randrange(pool)}",
        )  # fmt: skip
        phrase = rng.choice(PHRASES[primary])
        evidence = [phrase] + ([rng.choice(PHRASES[themes[1]])] if len(themes) > 1 else [])
        classification = (
            cid, "synthetic-1", None if abstained else stage, round(rng.uniform(0.5, 0.99), 3),
            json.dumps({t: round(rng.uniform(0.4, 0.99), 3) for t in themes}, sort_keys=True),
            json.dumps(evidence), round(sentiment, 4), "en",
            hashlib.blake2b(str(cid).encode(), digest_size=8).hexdigest(), created_s,
        )  # fmt: skip
        scores = json.loads(classification[4])
        theme_rows = [(cid, t, scores[t]) for t in themes]
        text = rng.choice(TEXTS[primary]).format(
            p=phrase, P=phrase.capitalize(), p2=rng.choice(PHRASES[primary]), d=rng.randint(3, 21)
        )
        messages = [
            (sources[source], f"S{cid}-1", cid, f"u{cid}", "end_user", True, False, channel,
             created_s, text, True),
            (sources[source], f"S{cid}-2", cid, "agent", "agent", True, False, channel,
             created_s + timedelta(hours=3), "Thanks for reaching out, we are looking into it.",
             True),
        ]  # fmt: skip
        if rng.random() < 0.1:
            messages.append(
                (sources[source], f"S{cid}-3", cid, f"u{cid}", "end_user", True, True, channel,
                 created_s + timedelta(days=2), rng.choice(CSAT), True)
            )  # fmt: skip
        yield _Row(conversation, classification, theme_rows, messages)


def _created(rng: random.Random, start: datetime, span: float) -> datetime:
    """A creation time: volume grows ~30 % over the window; weekdays busier than weekends."""
    while True:
        created = start + timedelta(seconds=span * (rng.random() ** (1 / 1.3)))
        if created.weekday() < 5 or rng.random() < 0.55:
            return created


def _chunks(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_CONVERSATION_COLS = (
    "id", "source_id", "external_id", "kind", "channel", "status", "created_at", "updated_at",
    "tags", "custom_fields", "deleted", "needs_mining", "synced_at", "requester_id",
)  # fmt: skip
_CLASSIFICATION_COLS = (
    "conversation_id", "model_version", "stage", "stage_confidence", "theme_scores",
    "evidence", "sentiment", "language", "text_hash", "classified_at",
)  # fmt: skip
_THEME_COLS = ("conversation_id", "theme", "score")
_MESSAGE_COLS = (
    "source_id", "external_id", "conversation_id", "author_id", "author_role", "public",
    "solicited", "channel", "created_at", "text", "redacted",
)  # fmt: skip
_DATETIME_COLS = {"created_at", "updated_at", "synced_at", "classified_at"}


def _insert(engine: Engine, chunk: Sequence[_Row]) -> None:
    tables = (
        ("conversation", _CONVERSATION_COLS, [r.conversation for r in chunk]),
        ("classification", _CLASSIFICATION_COLS, [r.classification for r in chunk]),
        ("conversation_theme", _THEME_COLS, [t for r in chunk for t in r.themes]),
        ("message", _MESSAGE_COLS, [m for r in chunk for m in r.messages]),
    )  # fmt: skip
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for table, cols, rows in tables:
                converted = [_sqlite_row(cols, row) for row in rows]
                marks = ", ".join("?" for _ in cols)
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", converted
                )
            raw.commit()
        finally:
            raw.close()
        return
    models = {
        "conversation": Conversation,
        "classification": Classification,
        "conversation_theme": ConversationTheme,
        "message": Message,
    }
    json_cols = {"tags", "custom_fields", "theme_scores", "evidence"}
    with engine.begin() as conn:
        for table, cols, rows in tables:
            dicts = [
                {
                    c: (json.loads(v) if c in json_cols else v)
                    for c, v in zip(cols, row, strict=True)
                }
                for row in rows
            ]
            if dicts:
                conn.execute(insert(models[table].__table__), dicts)


def _sqlite_row(cols: Sequence[str], row: Sequence[Any]) -> tuple[Any, ...]:
    """SQLAlchemy's SQLite storage format: naive UTC 'YYYY-MM-DD HH:MM:SS.ffffff', 0/1 booleans."""
    return tuple(
        value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if col in _DATETIME_COLS
        else int(value)
        if isinstance(value, bool)
        else value
        for col, value in zip(cols, row, strict=True)
    )
