"""The journey map as plain data: what the aggregation produces and every renderer consumes.

Renderers never query the database; they only read these dataclasses. That keeps the SQL in one
place (`aggregate.py`) and lets the HTML, Markdown and JSON outputs agree by construction.
`to_dict()` is the JSON schema (documented in docs/journey-map.md) — extend it, never rename keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

SCHEMA = "cjm.journey_map"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open time window [start, end) in aware UTC."""

    start: datetime
    end: datetime

    def previous(self) -> Period:
        """The window of the same length that ends where this one starts (for change)."""
        return Period(self.start - (self.end - self.start), self.start)

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


@dataclass(slots=True)
class Filters:
    """Which conversations the map covers besides the period (None = all)."""

    source: str | None = None
    channel: str | None = None
    segment: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SentimentStats:
    """Mean sentiment with its spread: the emotion curve's point and band."""

    n: int = 0
    mean: float | None = None
    sd: float | None = None
    ci_low: float | None = None  # 95 % confidence interval of the mean (normal approximation)
    ci_high: float | None = None
    negative_share: float | None = None  # share of conversations with sentiment < -0.05


@dataclass(slots=True)
class ChannelCount:
    channel: str
    conversations: int
    share: float  # of the stage's conversations


@dataclass(slots=True)
class ThemeCount:
    """A pain theme inside a stage (or overall): volume, share and change vs the previous period."""

    theme: str
    label: str
    conversations: int
    share: float  # of the stage's (or the period's) conversations
    previous_conversations: int
    change: float | None  # relative change in volume; None when the previous period had none
    mean_sentiment: float | None
    negative_share: float | None


@dataclass(slots=True)
class FeedbackContrast:
    """Solicited (CSAT comment present) vs unsolicited-only conversations of a stage."""

    solicited: int = 0
    solicited_sentiment: float | None = None
    unsolicited: int = 0
    unsolicited_sentiment: float | None = None


@dataclass(slots=True)
class Verbatim:
    """One redacted customer quote; text comes from `message.text`, already cleaned and redacted."""

    conversation_id: int
    external_id: str
    stage: str | None
    theme: str | None
    sentiment: float
    channel: str
    created_at: datetime
    text: str
    solicited: bool = False


@dataclass(slots=True)
class Opportunity:
    """Where fixing things helps most customers: volume × negativity × growth of a stage × theme."""

    rank: int
    stage: str
    theme: str
    stage_label: str
    theme_label: str
    score: float
    conversations: int
    negative_conversations: int
    growth: float  # shrunk ratio of this period's rate to the previous one, clipped to [0.5, 2]
    mean_sentiment: float | None
    summary: str


@dataclass(slots=True)
class EmotionShare:
    """A journey emotion at a stage: how many of the stage's conversations show it, and the
    customer's sentence that shows it most strongly."""

    emotion: str
    label: str
    conversations: int
    share: float  # of the stage's conversations
    quote: str | None


@dataclass(slots=True)
class StagePhrase:
    """What customers do or think at a stage, as they would write it ("track my parcel"), with
    how many of the stage's sampled conversations say it and one redacted sentence that does."""

    phrase: str
    conversations: int
    quote: str


@dataclass(slots=True)
class StageSummary:
    name: str
    label: str
    description: str
    conversations: int
    share: float  # of all conversations in the period (unstaged ones included)
    previous_conversations: int
    change: float | None
    channels: list[ChannelCount]
    sentiment: SentimentStats
    previous_sentiment: float | None
    pain_points: list[ThemeCount]
    feedback: FeedbackContrast
    actions: list[str]  # what customers do: the most frequent evidence phrases
    verbatims: list[Verbatim]
    opportunities: list[Opportunity] = field(default_factory=list)
    emotions: list[EmotionShare] = field(default_factory=list)  # dominant first
    phrases: list[StagePhrase] = field(default_factory=list)  # key phrases, best first


@dataclass(slots=True)
class WeekPoint:
    week: str  # ISO date of the Monday that starts the week (UTC)
    conversations: int
    mean_sentiment: float | None


@dataclass(slots=True)
class ThemeTrend:
    theme: str
    label: str
    points: list[WeekPoint]


@dataclass(slots=True)
class Spike:
    """A week in which a theme's volume share or sentiment departs from its own recent baseline."""

    theme: str
    label: str
    week: str
    metric: str  # "volume" | "sentiment"
    observed: float  # conversations, or mean sentiment
    expected: float  # baseline-expected conversations, or baseline mean sentiment
    effect: float  # rate ratio (volume) or sentiment difference (sentiment)
    n: int
    p_value: float
    q_value: float  # Benjamini–Hochberg adjusted over every test in the map


@dataclass(slots=True)
class HeatCell:
    stage: str
    theme: str
    conversations: int
    mean_sentiment: float | None


@dataclass(slots=True)
class PathStep:
    """One conversation in an example customer's path: its stage and the customer's words."""

    external_id: str
    created_at: datetime
    stage: str | None
    theme: str | None
    sentiment: float | None
    quote: str | None  # redacted, from message.text or the stored evidence sentence


@dataclass(slots=True)
class ExamplePath:
    """An example customer's conversations in the period, oldest first. `customer` is an opaque
    label (a short hash of the customer key), never a name, address or helpdesk id."""

    customer: str
    steps: list[PathStep]


@dataclass(slots=True)
class FlowLink:
    """Moves from one stage to the next between a customer's consecutive staged conversations."""

    source: str
    target: str
    moves: int
    previous_moves: int
    change: float | None
    direction: str  # "forward" | "same" | "backward" (by the taxonomy's stage order)


@dataclass(slots=True)
class SignalCount:
    key: str  # a stage (backwards: the stage moved back *to*; churn: the last contact's) or theme
    label: str
    count: int


@dataclass(slots=True)
class FlowSignal:
    """Backwards moves, repeats or churn signals: this period's count, the previous period's,
    the change, a breakdown and example paths (definitions in docs/journey-map.md)."""

    kind: str  # "backwards" | "repeats" | "churn"
    count: int
    previous: int
    change: float | None
    customers: int
    breakdown: list[SignalCount] = field(default_factory=list)
    examples: list[ExamplePath] = field(default_factory=list)


@dataclass(slots=True)
class JourneyPath:
    """A sequence of stages that customers' journeys in the period followed (first four steps)."""

    stages: list[str]
    customers: int
    longer: int  # of those customers, how many had more than four staged conversations


@dataclass(slots=True)
class Journeys:
    """Customers (requesters, merged across sources by hashed e-mail) and their paths."""

    customers: int = 0
    previous_customers: int = 0
    returning: int = 0  # customers with two or more staged conversations in the period
    conversations: int = 0  # conversations with a requester (the rest belong to no journey)
    staged_conversations: int = 0
    merged: int = 0  # customers whose conversations come from more than one source
    paths: list[JourneyPath] = field(default_factory=list)


@dataclass(slots=True)
class Flows:
    moves: int = 0
    previous_moves: int = 0
    change: float | None = 0.0
    links: list[FlowLink] = field(default_factory=list)
    backwards: FlowSignal | None = None
    repeats: FlowSignal | None = None
    churn: FlowSignal | None = None
    churn_days: int = 30
    repeat_contacts: int = 3
    churn_pending: int = 0  # negative last contacts too recent to judge (< churn_days old)


@dataclass(slots=True)
class JourneyMap:
    period: Period
    previous: Period
    filters: Filters
    conversations: int
    previous_conversations: int
    staged: int
    sentiment: SentimentStats
    stages: list[StageSummary]
    themes: list[ThemeCount]
    heatmap: list[HeatCell] = field(default_factory=list)
    weeks: list[str] = field(default_factory=list)
    weekly_totals: list[WeekPoint] = field(default_factory=list)
    trends: list[ThemeTrend] = field(default_factory=list)
    spikes: list[Spike] = field(default_factory=list)
    opportunities: list[Opportunity] = field(default_factory=list)
    stage_sentiment_weekly: dict[str, list[WeekPoint]] = field(default_factory=dict)
    not_english: int = 0  # conversations not in English: language only, no stage or themes
    period_note: str = ""  # how the period was chosen when --since/--until were left out
    notice: str = ""  # set when the map is empty: "no conversations in <period> …"
    journeys: Journeys = field(default_factory=Journeys)
    flows: Flows = field(default_factory=Flows)

    @property
    def unstaged(self) -> int:
        return self.conversations - self.staged

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON document (schema `cjm.journey_map` v1)."""
        data = asdict(self)
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "period": {
                "since": _iso(self.period.start),
                "until": _iso(self.period.end),
                "previous_since": _iso(self.previous.start),
                "previous_until": _iso(self.previous.end),
                "note": self.period_note,
            },
            "notice": self.notice,
            "filters": data["filters"],
            "totals": {
                "conversations": self.conversations,
                "previous_conversations": self.previous_conversations,
                "staged": self.staged,
                "unstaged": self.unstaged,
                "not_english": self.not_english,
                "sentiment": data["sentiment"],
            },
            "stages": [_jsonable(s) for s in data["stages"]],
            "themes": data["themes"],
            "heatmap": data["heatmap"],
            "weeks": self.weeks,
            "weekly_totals": data["weekly_totals"],
            "trends": data["trends"],
            "stage_sentiment_weekly": data["stage_sentiment_weekly"],
            "spikes": data["spikes"],
            "opportunities": data["opportunities"],
            "journeys": data["journeys"],
            "flows": _jsonable(data["flows"]),
        }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
