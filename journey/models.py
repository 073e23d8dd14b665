"""The theme database: SQLModel tables (DESIGN §4). Migrations in journey/migrations mirror these.

Times are stored as UTC and always come back timezone-aware, on SQLite and PostgreSQL alike.
Customer text lives only in `message.text` (cleaned and redacted) and in `classification.evidence`
and `theme_candidate.examples`; deleting a conversation's text purges all three.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Source(SQLModel, table=True):
    """A configured helpdesk instance, plus what cjm learnt about it (field ids, own user)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    kind: str
    base_url: str
    self_user_id: str | None = None
    stage_field_id: str | None = None
    confidence_field_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncState(SQLModel, table=True):
    """The resume point of one stream; committed together with the page it follows."""

    __tablename__ = "sync_state"
    __table_args__ = (UniqueConstraint("source_id", "stream"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id")
    stream: str
    checkpoint: str | None = None
    pages: int = 0
    records: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Person(SQLModel, table=True):
    """Authors' roles, cached so each helpdesk user is looked up once."""

    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id")
    external_id: str
    role: str
    # HMAC-SHA256 of the lower-cased e-mail (journey.identity), so one customer's journeys merge
    # across sources; the clear address is never stored. None when the helpdesk gave none.
    email_hash: str | None = Field(default=None, index=True)


class IdentitySalt(SQLModel, table=True):
    """The per-database key of `person.email_hash` when CJM_EMAIL_HASH_KEY is not set: random,
    made once (journey.identity). One row."""

    __tablename__ = "identity_salt"

    id: int | None = Field(default=None, primary_key=True)
    salt: str


class Conversation(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_conversation_created", "created_at"),
        Index("ix_conversation_dirty", "needs_mining"),
        # a customer's journey (the agent sidebar): migration 0011
        Index("ix_conversation_requester", "source_id", "requester_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id")
    external_id: str
    kind: str = "ticket"
    channel: str = "other"
    subject: str | None = None
    status: str = "unknown"
    requester_id: str | None = None
    organization_id: str | None = None  # the requester's organisation / company (journeys)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    custom_fields: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    deleted: bool = False
    needs_mining: bool = True
    synced_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Who last set cjm's fields, as the helpdesk tells it (Zendesk audits name the updater):
    # field id → {"value": …, "by_cjm": bool, "at": unix seconds}. None when it never said.
    field_setters: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )


class Message(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_message_conversation", "conversation_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id")
    external_id: str
    conversation_id: int = Field(foreign_key="conversation.id")
    author_id: str | None = None
    author_role: str | None = None
    public: bool = True
    solicited: bool = False
    channel: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    text: str = ""
    redacted: bool = True


class Classification(SQLModel, table=True):
    """The miner's latest answer for a conversation, with the text hash that produced it.

    Its themes are not here: they live once, as `ConversationTheme` rows (migration 0014), read
    as lists through `journey.store.themes_of`."""

    __table_args__ = (
        Index("ix_classification_stage", "stage"),
        # a stage's CSAT quote: its rows in sentiment order (migration 0013)
        Index("ix_classification_stage_sentiment", "stage", "sentiment"),
        # the map's count of conversations not in English: two short ranges (migration 0013)
        Index("ix_classification_language", "language"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    model_version: str
    stage: str | None = None
    stage_confidence: float = 0.0
    theme_scores: dict[str, float] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    evidence: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    stage_evidence: str | None = Field(default=None, sa_type=Text)  # the stage's best sentence
    sentiment: float = 0.0
    # journey emotions shown, strongest first: [{"emotion", "score", "sentence"}, …]
    emotions: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    language: str | None = None
    text_hash: str
    classified_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConversationTheme(SQLModel, table=True):
    """One row per (conversation, theme): the one home of a conversation's themes, what SQL
    aggregation, analysts' views, the ticket view and the outbox read. Rows are inserted in the
    miner's order (strongest first), so ordering by id gives the theme list back."""

    __tablename__ = "conversation_theme"
    __table_args__ = (
        UniqueConstraint("conversation_id", "theme"),
        Index("ix_conversation_theme_theme", "theme"),
        # a (stage, theme) pair's quotes: the theme's rows best score first (migration 0013)
        Index("ix_conversation_theme_rank", "theme", "score", "conversation_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    theme: str
    score: float
    evidence: str | None = Field(default=None, sa_type=Text)  # the theme's best sentence


class Writeback(SQLModel, table=True):
    """The outbox: what cjm wants on the ticket vs what it last applied there."""

    __table_args__ = (Index("ix_writeback_status", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    desired: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    applied: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # pending (to compare with the ticket) | sending (delta recorded, maybe on its way) |
    # applied | failed. Write-back reads only rows that are not applied.
    status: str = "pending"
    stage_locked: bool = False  # an agent set the stage by hand: cjm no longer writes it
    attempts: int = 0
    last_error: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The delta in flight, recorded before it is sent ({"fields": [[id, value]…], "add": […],
    # "remove": […]}), and the helpdesk job carrying it once known: after a crash the next run
    # resumes the job and recognises these values on the ticket as cjm's own.
    sent: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    job_id: str | None = None


class Label(SQLModel, table=True):
    """Human labels: imported files, agents' corrections picked up from the helpdesk, and
    `cjm label` decisions (`labeller` = who; `created_at` = when; `origin` = where from)."""

    __table_args__ = (Index("ix_label_conversation", "conversation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    origin: str  # agent | import | cjm label | zendesk app | freshdesk app | label page
    stage: str | None = None
    themes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    text: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    labeller: str | None = None  # the person (OS user or --labeller); None for older rows


class ThemeCandidate(SQLModel, table=True):
    __tablename__ = "theme_candidate"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    examples: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    size: int = 0
    status: str = "new"  # new | accepted | rejected
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    source_id: int | None = Field(default=None, foreign_key="source.id")
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = "running"  # running | ok | failed
    dry_run: bool = False
    conversations: int = 0
    messages: int = 0
    mined: int = 0
    written: int = 0
    write_failures: int = 0
    api_calls: int = 0
    rate_limited: int = 0
    error: str | None = None


# --- Added for Zendesk OAuth refresh-token rotation (issue: production-grade Zendesk connector).
class Credential(SQLModel, table=True):
    """A rotated OAuth pair of one source, encrypted (Fernet; key from the env variable the
    source's `credential_key_env` names). One row per source, replaced in one transaction, so
    the pair is never half-written. `origin` fingerprints the refresh token from the
    environment the chain started from: a fresh authorisation in the environment wins.
    `kind` tells a source's secrets apart: "oauth" (the pair) and "webhook_secret" (the
    Zendesk signing secret `cjm setup-webhook` read); one row per (source, kind)."""

    __table_args__ = (UniqueConstraint("source_name", "kind", name="uq_credential_source_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    source_name: str = Field(index=True)
    kind: str = "oauth"
    origin: str
    ciphertext: str
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- Added for real time (issue #17: `cjm serve`, the webhook queue, workers).
class WebhookEvent(SQLModel, table=True):
    """The real-time inbox: one helpdesk webhook delivery for one ticket, stored before the 202.

    `delivery` is the helpdesk's own id for the delivery (Zendesk
    `x-zendesk-webhook-invocation-id`; otherwise a hash of the body), so a repeated delivery hits
    the unique key and is stored once. `status`: queued → (claimed by a worker) → done | failed;
    a failed attempt goes back to queued with `next_attempt_at` pushed back. No customer text:
    the payload is a doorbell, the worker reads the ticket from the API.
    """

    __tablename__ = "webhook_event"
    __table_args__ = (
        UniqueConstraint("source", "delivery", "ticket"),
        Index("ix_webhook_event_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    delivery: str
    ticket: str
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: str = "queued"  # queued | claimed | done | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_by: str | None = None
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None


class WorkerHeartbeat(SQLModel, table=True):
    """One row per running worker (`cjm serve` or `cjm worker`), touched every loop: /healthz
    shows who is alive and a claim older than a dead worker's last beat is taken back."""

    __tablename__ = "worker_heartbeat"

    worker: str = Field(primary_key=True)
    host: str = ""
    pid: int = 0
    source: str | None = None  # --source, when the worker drains one source only
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    beat_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed: int = 0


def table(model: type[SQLModel]) -> Table:
    """The model's Core table for SQL expressions (`table(Conversation).c.id`): SQLModel does not
    declare `__table__` for type checkers, the metadata's registry is typed."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


class JourneyStep(SQLModel, table=True):
    """Each live conversation's place in its customer's journey (requester, merged by hashed
    e-mail), precomputed so the map's flows are range scans instead of window-function sorts
    over every conversation (issue 19 item 5, migration 0012). Derived data: rebuilt per
    customer by the store whenever a conversation, its classification or its requester's
    e-mail hash changes (`journey.journey_map.steps`); never edited by hand."""

    __tablename__ = "journey_step"
    __table_args__ = (
        Index("ix_journey_step_created", "created_at"),
        Index("ix_journey_step_customer", "customer_key", "created_at"),
        # covering: the churn signals read the negative contacts of a window from the index alone
        Index(
            "ix_journey_step_churn", "created_at", "sentiment", "next_at", "customer_key", "stage"
        ),
        # covering: the backward moves of a period and the corrections at its edges (0013)
        Index(
            "ix_journey_step_moves", "created_at", "prev_at", "stage", "prev_stage", "customer_key"
        ),
        # the churn signals of a window, from the index alone (migration 0013)
        Index("ix_journey_step_signal", "signal_at", "customer_key", "stage"),
    )

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    customer_key: str  # journey_map.customers.customer_key("requester")
    source_id: int
    created_at: datetime = Field(sa_type=UTCDateTime)
    stage: str | None = None  # the classification's stage (None: unstaged or not yet mined)
    sentiment: float | None = None  # None: not yet mined
    # the customer's previous *staged* conversation (staged rows only): its stage and time
    prev_stage: str | None = None
    prev_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # next conversation, any
    # the customer's previous conversation (any): when, and in which source (journeys, merges)
    prev_any_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    prev_source_id: int | None = None
    # the customer's next three staged conversations' stages and next four's times (staged rows
    # only): a journey path is read off its first staged conversation in the period
    next1_stage: str | None = None
    next2_stage: str | None = None
    next3_stage: str | None = None
    next1_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next2_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next3_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next4_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # created_at when this is a 30-day churn signal (negative, and no next contact within 30
    # days), else None (migration 0013)
    signal_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class JourneyDay(SQLModel, table=True):
    """The journey steps' facts per day (UTC): counts by `kind` and two labels `a`, `b` ('' when
    unused): "rows", "staged", "first" (the customer's first conversation ever), "move"
    (prev_stage → stage), "path" (a: the four stages of a journey starting here as JSON, b: "1"
    when it has more), "switch" (a source change), "signal" (a: the stage of a churn signal).
    A map sums the days of its period instead of scanning every step, and corrects at the
    period's edges (migration 0013). Derived: kept by `journey.journey_map.journey_days`
    whenever the steps of a customer are recomputed."""

    __tablename__ = "journey_day"
    __table_args__ = (
        UniqueConstraint("day", "kind", "a", "b", name="uq_journey_day_key"),
        Index("ix_journey_day_kind", "kind", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime = Field(sa_type=UTCDateTime)
    kind: str
    a: str = ""
    b: str = ""
    n: int = 0


class MapEmotionDay(SQLModel, table=True):
    """The map's emotion lane rolled up per day (UTC) × source × channel × stage × emotion: how
    many showings, and the best one (readable sentence first, highest score, oldest
    conversation) with its sentence (migration 0013). Derived: recomputed with the other daily
    rollups (`journey.journey_map.emotion_days`)."""

    __tablename__ = "map_emotion_day"
    __table_args__ = (Index("ix_map_emotion_day_day", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: datetime = Field(sa_type=UTCDateTime)
    source_id: int
    channel: str | None = None
    stage: str
    emotion: str
    n: int = 0
    best_short: int = 0  # 0: the best showing's sentence has 12 characters or more
    best_score: float | None = None
    best_id: int = 0  # its conversation
    sentence: str | None = Field(default=None, sa_type=Text)


class JourneyThemeStep(SQLModel, table=True):
    """Per (conversation, theme) of a journey: when the same customer last raised the same theme
    twice before, so "three contacts about one theme" is a range scan (migration 0012; kept with
    `journey_step`)."""

    __tablename__ = "journey_theme_step"
    __table_args__ = (
        Index("ix_journey_theme_step_created", "created_at"),
        # covering: the repeats of a period are read from the index alone
        Index("ix_journey_theme_step_repeat", "created_at", "prev2_at", "customer_key", "theme"),
    )

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    theme: str = Field(primary_key=True)
    customer_key: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    prev2_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MapDay(SQLModel, table=True):
    """The journey map's conversation scan, rolled up per day (UTC) × source × channel × stage ×
    CSAT comment × deleted: (classified, conversations, Σ sentiment, Σ sentiment², negatives).
    A map whose period starts and ends at midnight reads these few thousand rows instead of
    every conversation (migration 0012). Derived: the store recomputes the days it touches
    (`journey.journey_map.rollups`)."""

    __tablename__ = "map_day"
    __table_args__ = (Index("ix_map_day_day", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: datetime = Field(sa_type=UTCDateTime)
    source_id: int
    channel: str
    stage: str | None = None
    csat: int = 0  # 1: the conversation has a solicited (CSAT) comment
    deleted: bool = False  # kept so the rows add up to every conversation (the in-step check)
    n: int = 0
    total: int = 0
    s: float = 0.0
    ss: float = 0.0
    neg: int = 0


class MapThemeDay(SQLModel, table=True):
    """The map's theme scan, rolled up per day × source × channel × stage × theme (live,
    classified conversations only), with the same sums as `MapDay` (migration 0012)."""

    __tablename__ = "map_theme_day"
    __table_args__ = (Index("ix_map_theme_day_day", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: datetime = Field(sa_type=UTCDateTime)
    source_id: int
    channel: str
    stage: str | None = None
    theme: str
    n: int = 0
    total: int = 0
    s: float = 0.0
    ss: float = 0.0
    neg: int = 0
