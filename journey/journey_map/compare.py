"""Segments side by side: `cjm map --compare segment=FIELD` builds one journey map per value of a
segment field (plan, region, channel, a persona field…) over the same period and lays them out
as columns per stage with a row block per segment, highlighting the differences that matter.

Each segment's map is an ordinary `build_map` with that segment added to the filters, so every
number means exactly what it means on a single map. A difference is highlighted when a segment
departs from the other segments' pooled figure by at least:

- volume share of the stage: 5 percentage points;
- mean sentiment at the stage: 0.10 (worse or better), with at least 10 conversations there;
- top pain point at the stage: a different theme than the most common top theme;
- flows: backward-move share or churn signals per customer: 5 percentage points.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from journey.errors import ConfigError
from journey.journey_map.aggregate import MapOptions, build_map
from journey.journey_map.filters import (
    check_segment_value,
    conversation_conditions,
    period_note,
    resolve_period,
    segment_expression,
    segment_fields,
)
from journey.journey_map.model import Filters, JourneyMap, Period, _iso
from miner import Taxonomy

MAX_SEGMENTS = 6  # more columns than this do not fit a page side by side
SHARE_POINTS = 0.05
SENTIMENT_GAP = 0.10
MIN_CELL = 10  # fewer conversations than this: a mean too noisy to call a difference
SCHEMA = "cjm.journey_compare"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class CompareSpec:
    field: str
    values: tuple[str, ...] = ()  # empty: the field's biggest values in the period


def parse_compare(spec: str) -> CompareSpec:
    """`segment=plan` or `segment=plan=free,pro` → CompareSpec; anything else a usage error."""
    kind, sep, rest = spec.partition("=")
    if kind.strip() != "segment" or not sep or not rest.split("=")[0].strip():
        raise ConfigError(
            f"--compare {spec!r}: use segment=FIELD (e.g. --compare segment=plan) or "
            "segment=FIELD=V1,V2"
        )
    name, _sep, values = rest.partition("=")
    picked = tuple(v.strip() for v in values.split(",") if v.strip())
    return CompareSpec(name.strip(), picked)


@dataclass(slots=True)
class StageCell:
    """One segment at one stage, with what stands out against the other segments."""

    stage: str
    conversations: int
    share: float  # of the segment's conversations
    mean_sentiment: float | None
    top_pain: str | None
    top_pain_label: str | None
    highlights: list[str] = field(default_factory=list)  # "share", "sentiment", "pain"
    share_gap: float | None = None  # this segment minus the others (fraction)
    sentiment_gap: float | None = None


@dataclass(slots=True)
class SegmentFlows:
    customers: int
    moves: int
    backward_share: float | None  # backward moves / moves
    churn: int
    churn_rate: float | None  # churn signals per customer of the period
    repeats: int
    highlights: list[str] = field(default_factory=list)  # "backwards", "churn"


@dataclass(slots=True)
class SegmentColumn:
    value: str
    conversations: int
    share_of_all: float
    mean_sentiment: float | None
    stages: list[StageCell]
    flows: SegmentFlows
    map: JourneyMap


@dataclass(slots=True)
class Comparison:
    field: str
    period: Period
    previous: Period
    filters: Filters
    stage_names: list[str]
    stage_labels: dict[str, str]
    segments: list[SegmentColumn]
    period_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The `cjm.journey_compare` document (docs/journey-map.md)."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "field": self.field,
            "period": {"since": _iso(self.period.start), "until": _iso(self.period.end),
                       "note": self.period_note},
            "filters": {"source": self.filters.source, "channel": self.filters.channel,
                        "segment": self.filters.segment},
            "stages": [{"name": n, "label": self.stage_labels[n]} for n in self.stage_names],
            "segments": [
                {
                    "value": s.value,
                    "conversations": s.conversations,
                    "share_of_all": s.share_of_all,
                    "mean_sentiment": s.mean_sentiment,
                    "stages": [_cell_dict(c) for c in s.stages],
                    "flows": _flows_dict(s.flows),
                    "map": s.map.to_dict(),
                }
                for s in self.segments
            ],
        }  # fmt: skip


def _cell_dict(c: StageCell) -> dict[str, Any]:
    return {
        "stage": c.stage, "conversations": c.conversations, "share": c.share,
        "mean_sentiment": c.mean_sentiment, "top_pain": c.top_pain,
        "top_pain_label": c.top_pain_label, "highlights": c.highlights,
        "share_gap": c.share_gap, "sentiment_gap": c.sentiment_gap,
    }  # fmt: skip


def _flows_dict(f: SegmentFlows) -> dict[str, Any]:
    return {
        "customers": f.customers, "moves": f.moves, "backward_share": f.backward_share,
        "churn": f.churn, "churn_rate": f.churn_rate, "repeats": f.repeats,
        "highlights": f.highlights,
    }  # fmt: skip


def build_comparison(
    engine: Engine,
    taxonomy: Taxonomy,
    spec: CompareSpec,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
    channel: str | None = None,
    segment: Mapping[str, str] | None = None,
    options: MapOptions = MapOptions(),
) -> Comparison:
    """One map per segment value, side by side, with the differences that matter marked."""
    fields = segment_fields(engine)
    if spec.field not in fields:
        raise ConfigError(
            f"--compare segment={spec.field}: no conversation has a field {spec.field!r}; "
            f"fields: {', '.join(fields) or 'none (run `cjm sync` first)'}"
        )
    if spec.field in (segment or {}):
        raise ConfigError(
            f"--compare segment={spec.field} and --segment {spec.field}=… contradict each other: "
            "drop one"
        )
    period = resolve_period(engine, since, until)
    try:
        values = [check_segment_value(engine, spec.field, v) for v in spec.values]
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("--segment ", "--compare segment=", 1)) from None
    if not values:
        values = _biggest_values(engine, spec.field, period, Filters(source, channel,
                                 dict(segment or {})))  # fmt: skip
    values = list(dict.fromkeys(values))
    if len(values) < 2:
        raise ConfigError(
            f"--compare segment={spec.field}: needs two or more values in "
            f"{period.start.date()} → {period.end.date()}; found {', '.join(values) or 'none'}"
        )
    maps = [
        build_map(
            engine, taxonomy, since=period.start, until=period.end, source=source,
            channel=channel, segment={**(segment or {}), spec.field: v}, options=options,
        )
        for v in values
    ]  # fmt: skip
    first = maps[0]
    stage_names = [s.name for s in first.stages]
    for jm in maps[1:]:
        stage_names += [s.name for s in jm.stages if s.name not in stage_names]
    labels = {s.name: s.label for jm in maps for s in jm.stages}
    columns = _columns(values, maps, stage_names)
    return Comparison(
        field=spec.field,
        period=period,
        previous=period.previous(),
        filters=Filters(source, channel, dict(segment or {})),
        stage_names=stage_names,
        stage_labels=labels,
        segments=columns,
        period_note=period_note(since, until),
    )


def _biggest_values(engine: Engine, key: str, period: Period, filters: Filters) -> list[str]:
    value = segment_expression(key)
    query = (
        select(value, func.count())
        .where(*conversation_conditions(period, filters), value.is_not(None))
        .group_by(value)
        .order_by(func.count().desc(), value)
        .limit(MAX_SEGMENTS)
    )
    with engine.connect() as conn:
        return [str(v) for v, _n in conn.execute(query) if str(v) != ""]


def _columns(
    values: list[str], maps: list[JourneyMap], stage_names: list[str]
) -> list[SegmentColumn]:
    everyone = sum(jm.conversations for jm in maps)
    columns = []
    for value, jm in zip(values, maps, strict=True):
        by_stage = {s.name: s for s in jm.stages}
        cells = []
        for name in stage_names:
            s = by_stage.get(name)
            pain = s.pain_points[0] if s and s.pain_points else None
            cells.append(StageCell(
                stage=name,
                conversations=s.conversations if s else 0,
                share=s.share if s else 0.0,
                mean_sentiment=s.sentiment.mean if s else None,
                top_pain=pain.theme if pain else None,
                top_pain_label=pain.label if pain else None,
            ))  # fmt: skip
        fl = jm.flows
        back = fl.backwards.count if fl.backwards else 0
        churn = fl.churn.count if fl.churn else 0
        flows = SegmentFlows(
            customers=jm.journeys.customers,
            moves=fl.moves,
            backward_share=round(back / fl.moves, 4) if fl.moves else None,
            churn=churn,
            churn_rate=round(churn / jm.journeys.customers, 4) if jm.journeys.customers else None,
            repeats=fl.repeats.count if fl.repeats else 0,
        )
        columns.append(SegmentColumn(
            value=value,
            conversations=jm.conversations,
            share_of_all=round(jm.conversations / everyone, 4) if everyone else 0.0,
            mean_sentiment=jm.sentiment.mean,
            stages=cells,
            flows=flows,
            map=jm,
        ))  # fmt: skip
    _highlight(columns, maps, stage_names)
    return columns


def _highlight(columns: list[SegmentColumn], maps: list[JourneyMap], stages: list[str]) -> None:
    """Mark where a segment departs from the others pooled (see the module docstring)."""
    for i, column in enumerate(columns):
        others = [c for j, c in enumerate(columns) if j != i]
        other_maps = [m for j, m in enumerate(maps) if j != i]
        other_total = sum(m.conversations for m in other_maps)
        for k, cell in enumerate(column.stages):
            pooled_n = sum(c.stages[k].conversations for c in others)
            if column.conversations and other_total:
                gap = cell.share - pooled_n / other_total
                cell.share_gap = round(gap, 4)
                if abs(gap) >= SHARE_POINTS:
                    cell.highlights.append("share")
            pooled = _pooled_sentiment(other_maps, stages[k])
            enough = cell.conversations >= MIN_CELL
            if cell.mean_sentiment is not None and pooled is not None and enough:
                cell.sentiment_gap = round(cell.mean_sentiment - pooled, 4)
                if abs(cell.sentiment_gap) >= SENTIMENT_GAP:
                    cell.highlights.append("sentiment")
            tops = Counter(c.stages[k].top_pain for c in columns if c.stages[k].top_pain)
            if cell.top_pain and tops:
                common, n = min(tops.items(), key=lambda kv: (-kv[1], kv[0]))
                if cell.top_pain != common and n > 1:
                    cell.highlights.append("pain")
        f = column.flows
        for attr, flag in (("backward_share", "backwards"), ("churn_rate", "churn")):
            mine = getattr(f, attr)
            theirs = [getattr(c.flows, attr) for c in others if getattr(c.flows, attr) is not None]
            if (
                mine is not None
                and theirs
                and abs(mine - sum(theirs) / len(theirs)) >= SHARE_POINTS
            ):
                f.highlights.append(flag)


def _pooled_sentiment(maps: list[JourneyMap], stage: str) -> float | None:
    n = total = 0.0
    for jm in maps:
        for s in jm.stages:
            if s.name == stage and s.sentiment.n and s.sentiment.mean is not None:
                n += s.sentiment.n
                total += s.sentiment.mean * s.sentiment.n
    return total / n if n else None
