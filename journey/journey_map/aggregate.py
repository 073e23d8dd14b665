"""The journey map's numbers, computed in SQL (SQLite and PostgreSQL) and assembled into `model`.

Every figure is a GROUP BY over `conversation` ⋈ `classification` (⋈ `conversation_theme`) for the
period, so a map over a million conversations costs a handful of index-assisted scans, and Python
only ever sees grouped rows (stages × channels, stages × themes, weeks × themes). Sentiment is
aggregated as (n, Σx, Σx²) so means, spreads and t-tests follow without a second pass.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, and_, case, exists, func, or_, select, true, tuple_
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.expression import ColumnElement

from journey.journey_map import emotion_days
from journey.journey_map import rollups as map_rollups
from journey.journey_map import steps as journey_steps
from journey.journey_map.filters import (
    check_filters,
    conversation_conditions,
    newest_conversation,
    period_note,
    resolve_period,
)
from journey.journey_map.flows import FlowOptions, build_flows
from journey.journey_map.formatting import period_label
from journey.journey_map.model import (
    ChannelCount,
    EmotionShare,
    FeedbackContrast,
    Filters,
    HeatCell,
    JourneyMap,
    Period,
    SentimentStats,
    Spike,
    StagePhrase,
    StageSummary,
    ThemeCount,
    ThemeTrend,
    Verbatim,
    WeekPoint,
)
from journey.journey_map.opportunities import CellStats, rank_opportunities
from journey.journey_map.spikes import Cell, SpikeConfig, detect_spikes
from journey.journey_map.sql import customer_words, week_of, week_start, weeks_between
from journey.models import Classification, Conversation, ConversationTheme, Message, table
from miner import Taxonomy
from miner.phrases import documents_of, key_phrases

C = table(Conversation)
K = table(Classification)
T = table(ConversationTheme)
M = table(Message)

NEGATIVE = -0.05  # VADER's convention: compound below −0.05 reads as negative
MIN_TREND_WEEKS = 12
VERBATIM_CHARS = 480  # the HTML shows the first sentences and expands the rest on a click


@dataclass(slots=True)
class Sums:
    """(n, Σ sentiment, Σ sentiment², negatives): what every sentiment figure is built from."""

    n: int = 0
    total: int = 0  # conversations, classified or not (sentiment only exists for classified)
    s: float = 0.0
    ss: float = 0.0
    neg: int = 0

    def add(self, other: Sums) -> None:
        self.n += other.n
        self.total += other.total
        self.s += other.s
        self.ss += other.ss
        self.neg += other.neg

    @property
    def mean(self) -> float | None:
        return self.s / self.n if self.n else None


@dataclass(frozen=True, slots=True)
class MapOptions:
    pain_points_per_stage: int = 5
    verbatims_per_stage: int = 2
    actions_per_stage: int = 3
    emotions_per_stage: int = 3
    opportunities: int = 10
    spikes: SpikeConfig = SpikeConfig()
    flows: FlowOptions = FlowOptions()


def build_map(
    engine: Engine,
    taxonomy: Taxonomy,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
    channel: str | None = None,
    segment: Mapping[str, str] | None = None,
    options: MapOptions = MapOptions(),
) -> JourneyMap:
    """Aggregate the journey map for [since, until) and the period before it (for change)."""
    requested = Filters(source=source, channel=channel, segment=dict(segment or {}))
    filters = check_filters(engine, requested, taxonomy).filters
    period = resolve_period(engine, since, until)
    previous = period.previous()
    labels = _Labels(taxonomy)
    steps_ready = journey_steps.ensure(engine)  # a bulk load: the flows' stored steps, once
    rollups_ready = map_rollups.ensure(engine)  # and the daily rollups
    weeks, window_start = _trend_weeks(period, options)
    window = Period(min(window_start, previous.start), period.end)
    with engine.connect() as conn:
        rolled = map_rollups.usable(
            conn, filters, window.start, window.end, period.start, period.end, previous.start,
            ready=rollups_ready,
        )  # fmt: skip
    # the flows (the longest job after the conversation scan) start first, beside that scan
    (journeys, flows), scan, theme_scan, actions, emotions = _concurrently(
        engine,
        lambda conn: build_flows(
            conn,
            period,
            filters,
            taxonomy.stage_names,
            labels.stage,
            labels.theme,
            options.flows,
            steps_ready,
        ),  # fmt: skip
        lambda conn: _scan_conversations(conn, window, period, previous, filters, rolled),
        lambda conn: _scan_themes(conn, window, period, previous, filters, rolled),
        lambda conn: _phrases(conn, period, filters, options.actions_per_stage),
        lambda conn: (
            emotion_days.read(conn, period, filters) if rolled else _emotions(conn, period, filters)
        ),
    )
    now_sc, prev_sc, feedback, week_totals, stage_weeks = _split_conversations(scan, weeks)
    now_st, prev_st, theme_weeks = _split_themes(theme_scan, weeks)
    with engine.connect() as conn:
        _tune(conn)
        stage_names = _stage_order(taxonomy, now_sc, now_st)
        verbatims = _verbatims(conn, period, filters, now_st, stage_names, options)
        not_english = _not_english(conn, period, filters)

    stage_sums = _by_stage(now_sc)
    prev_stage_sums = _by_stage(prev_sc)
    total = sum(s.total for s in stage_sums.values())
    prev_total = sum(s.total for s in prev_stage_sums.values())
    everything = Sums()
    for sums in stage_sums.values():
        everything.add(sums)

    theme_names = _theme_order(taxonomy, now_st)
    cells = {
        key: CellStats(v.n, v.neg, _r(v.mean)) for key, v in now_st.items() if key[0] is not None
    }
    prev_cells = {key: v.n for key, v in prev_st.items() if key[0] is not None}
    opportunities = rank_opportunities(
        cells,
        prev_cells,
        current_total=total,
        previous_total=prev_total,
        stage_label=labels.stage,
        theme_label=labels.theme,
        limit=options.opportunities,
    )

    stages = []
    for name in stage_names:
        sums = stage_sums.get(name, Sums())
        prev = prev_stage_sums.get(name, Sums())
        channels = sorted(
            ((ch, v.total) for (st, ch), v in now_sc.items() if st == name and v.total),
            key=lambda item: (-item[1], item[0]),
        )
        stage_themes = {th: v for (st, th), v in now_st.items() if st == name}
        prev_themes = {th: v.n for (st, th), v in prev_st.items() if st == name}
        stages.append(
            StageSummary(
                name=name,
                label=labels.stage(name),
                description=labels.stage_description(name),
                conversations=sums.total,
                share=_share(sums.total, total),
                previous_conversations=prev.total,
                change=_change(sums.total, prev.total),
                channels=[ChannelCount(ch, n, _share(n, sums.total)) for ch, n in channels],
                sentiment=_stats(sums),
                previous_sentiment=_r(prev.mean),
                pain_points=_theme_counts(
                    stage_themes, prev_themes, sums.total, labels, options.pain_points_per_stage
                ),
                feedback=feedback.get(name, FeedbackContrast()),
                actions=[p.phrase for p in actions.get(name, [])],
                phrases=actions.get(name, []),
                verbatims=verbatims.get(name, []),
                opportunities=[o for o in opportunities if o.stage == name],
                emotions=[
                    EmotionShare(e, _EMOTION_LABELS.get(e, e), n, _share(n, sums.total), quote)
                    for e, n, quote in emotions.get(name, [])
                ][: options.emotions_per_stage],
            )
        )

    theme_totals: dict[str, Sums] = defaultdict(Sums)
    for (_st, th), v in now_st.items():
        theme_totals[th].add(v)
    prev_theme_totals: dict[str, int] = defaultdict(int)
    for (_st, th), v in prev_st.items():
        prev_theme_totals[th] += v.n

    newest = newest_conversation(engine)  # one MAX over an index: says why a map is empty
    spikes, trends = _spikes_and_trends(
        period, weeks, week_totals, theme_weeks, theme_names, labels, options.spikes
    )
    return JourneyMap(
        period=period,
        previous=previous,
        filters=filters,
        conversations=total,
        previous_conversations=prev_total,
        staged=sum(stage_sums[n].total for n in stage_names if n in stage_sums),
        sentiment=_stats(everything),
        stages=stages,
        themes=_theme_counts(theme_totals, prev_theme_totals, total, labels, None),
        heatmap=[
            HeatCell(st, th, now_st[(st, th)].n, _r(now_st[(st, th)].mean))
            for st in stage_names
            for th in theme_names
            if (st, th) in now_st
        ],
        weeks=weeks,
        weekly_totals=[WeekPoint(w, week_totals[w].total, _r(week_totals[w].mean)) for w in weeks],
        trends=trends,
        spikes=spikes,
        opportunities=opportunities,
        stage_sentiment_weekly={
            st: [
                WeekPoint(w, stage_weeks[(w, st)].n, _r(stage_weeks[(w, st)].mean))
                for w in weeks
                if (w, st) in stage_weeks
            ]
            for st in stage_names
        },
        not_english=not_english,
        period_note=period_note(since, until, empty=newest is None),
        notice=_empty_notice(newest, period, filters) if total == 0 else "",
        journeys=journeys,
        flows=flows,
    )


def _empty_notice(newest: datetime | None, period: Period, filters: Filters) -> str:
    """What an empty map says instead of a grid of zeros: the period, and why it may be empty."""
    if newest is None:
        return (
            f"no conversations in {period_label(period)}: the database has none yet; "
            "run `cjm sync` first"
        )
    filtered = filters.source or filters.channel or filters.segment
    return (
        f"no conversations in {period_label(period)}"
        + (" match these filters" if filtered else "")
        + f" (the newest conversation in the database is from {newest.date().isoformat()})"
    )


# ---- queries ----------------------------------------------------------------------------------


def _sums(row: Any, offset: int) -> Sums:
    n, total, s, ss, neg = row[offset : offset + 5]
    return Sums(n=int(n), total=int(total), s=float(s), ss=float(ss), neg=int(neg))


def _where(period: Period | None, filters: Filters) -> list[ColumnElement[bool]]:
    return conversation_conditions(period, filters)


_CURRENT, _PREVIOUS, _EARLIER = 1, 2, 0
_WORKERS = 2


def _concurrently(engine: Engine, *jobs: Callable[[Connection], Any]) -> list[Any]:
    """Run independent read queries on their own connections, two at a time: the two big scans
    then use both cores (SQLite and psycopg release the GIL while a query runs). An in-memory
    SQLite database shares one connection (StaticPool), so there they run one after another."""

    def run(job: Callable[[Connection], Any]) -> Any:
        with engine.connect() as conn:
            _tune(conn)
            return job(conn)

    if isinstance(engine.pool, StaticPool):
        return [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="cjm-map") as pool:
        return list(pool.map(run, jobs))


def _tune(conn: Connection) -> None:
    """SQLite reads a large theme database much faster with a big page cache and memory-mapped
    I/O (the defaults are 2 MiB and none); these pragmas only affect this connection."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB
        conn.exec_driver_sql("PRAGMA mmap_size = 2147483648")  # 2 GiB address space
        conn.exec_driver_sql("PRAGMA temp_store = MEMORY")


def _bucket(period: Period, previous: Period) -> Any:
    """1 = this period, 2 = the previous one, 0 = earlier (trend history only)."""
    return case(
        (C.c.created_at >= period.start, _CURRENT),
        (C.c.created_at >= previous.start, _PREVIOUS),
        else_=_EARLIER,
    )


def _scan_conversations(
    conn: Connection,
    window: Period,
    period: Period,
    previous: Period,
    filters: Filters,
    rolled: bool = False,
) -> list[tuple[Any, ...]]:
    """One pass over every conversation of the window (previous period + trend weeks + this
    period), grouped by (bucket, week, stage, channel, has CSAT comment) with sentiment sums:
    stage × channel now and before, the feedback contrast, weekly totals and the stage × week
    sentiment all come from these few thousand groups. Unclassified and abstained conversations
    have stage None (they count in totals, not in any stage). The CSAT probe only runs for
    conversations of this period. `rolled`: summed from the daily rollup (`rollups.py`)."""
    if rolled:
        return map_rollups.scan_conversations(conn, window, period, previous, filters, week_start)
    has_csat = exists().where(M.c.conversation_id == C.c.id, M.c.solicited.is_(True))
    inner = (
        select(
            _bucket(period, previous).label("bucket"),
            week_start(C.c.created_at).label("week"),
            K.c.stage.label("stage"),
            C.c.channel.label("channel"),
            case((C.c.created_at < period.start, 0), (has_csat, 1), else_=0).label("csat"),
            K.c.id.label("kid"),
            K.c.sentiment.label("sentiment"),
        )
        .select_from(C.outerjoin(K, K.c.conversation_id == C.c.id))
        .where(*_where(window, filters))
        .subquery()
    )
    keys = (inner.c.bucket, inner.c.week, inner.c.stage, inner.c.channel, inner.c.csat)
    query = select(*keys, *_sums_of(inner.c.sentiment, inner.c.kid)).group_by(*keys)
    return [tuple(row) for row in conn.execute(query)]


def _not_english(conn: Connection, period: Period, filters: Filters) -> int:
    """Conversations of the period whose text is not English: the miner gives them a language
    and sentiment but no stage or themes, and the map says how many so they are not a silent
    part of "unstaged"."""
    query = (
        select(func.count())
        .select_from(C.join(K, K.c.conversation_id == C.c.id))
        # two index ranges around "en" (migration 0013), not a scan of the period: the period
        # is checked per row found (`coalesce` keeps SQLite off the created_at index)
        .where(
            *_where(None, filters),
            func.coalesce(C.c.created_at, C.c.created_at) >= period.start,
            func.coalesce(C.c.created_at, C.c.created_at) < period.end,
            or_(K.c.language < "en", K.c.language > "en"),
        )
    )
    return int(conn.execute(query).scalar_one())


def _scan_themes(
    conn: Connection,
    window: Period,
    period: Period,
    previous: Period,
    filters: Filters,
    rolled: bool = False,
) -> list[tuple[Any, ...]]:
    """One pass over the window's conversation × theme rows, grouped by (bucket, week, stage,
    theme): stage × theme now and before, and the weekly theme series for trends and spikes."""
    if rolled:
        return map_rollups.scan_themes(conn, window, period, previous, filters, week_start)
    inner = (
        select(
            _bucket(period, previous).label("bucket"),
            week_start(C.c.created_at).label("week"),
            K.c.stage.label("stage"),
            T.c.theme.label("theme"),
            K.c.id.label("kid"),
            K.c.sentiment.label("sentiment"),
        )
        .select_from(
            C.join(K, K.c.conversation_id == C.c.id).join(T, T.c.conversation_id == C.c.id)
        )
        .where(*_where(window, filters))
        .subquery()
    )
    keys = (inner.c.bucket, inner.c.week, inner.c.stage, inner.c.theme)
    query = select(*keys, *_sums_of(inner.c.sentiment, inner.c.kid)).group_by(*keys)
    return [tuple(row) for row in conn.execute(query)]


def _sums_of(sentiment: Any, classified: Any) -> list[Any]:
    return [
        func.count(classified),
        func.count(),
        func.coalesce(func.sum(sentiment), 0.0),
        func.coalesce(func.sum(sentiment * sentiment), 0.0),
        func.coalesce(func.sum(case((sentiment < NEGATIVE, 1), else_=0)), 0),
    ]


SumsTable = dict[tuple[Any, ...], Sums]


def _split_conversations(
    rows: list[tuple[Any, ...]], weeks: list[str]
) -> tuple[SumsTable, SumsTable, dict[str, FeedbackContrast], dict[str, Sums], SumsTable]:
    """The conversation scan's groups → (stage × channel now, before, feedback contrast,
    weekly totals, stage × week)."""
    in_window = set(weeks)
    now: SumsTable = defaultdict(Sums)
    before: SumsTable = defaultdict(Sums)
    csat: SumsTable = defaultdict(Sums)
    totals: dict[str, Sums] = {w: Sums() for w in weeks}
    stage_weeks: SumsTable = defaultdict(Sums)
    for bucket, week, stage, channel, has_csat, *numbers in rows:
        sums = _sums(numbers, 0)
        if bucket == _CURRENT:
            now[(stage, channel)].add(sums)
            if stage is not None:
                csat[(stage, has_csat)].add(sums)
        elif bucket == _PREVIOUS:
            before[(stage, channel)].add(sums)
        if week in in_window:
            totals[week].add(sums)
            if stage is not None:
                stage_weeks[(week, stage)].add(sums)
    feedback: dict[str, FeedbackContrast] = defaultdict(FeedbackContrast)
    for (stage, has_csat), sums in sorted(csat.items(), key=lambda item: (item[0][0], item[0][1])):
        contrast = feedback[stage]
        if has_csat:
            contrast.solicited, contrast.solicited_sentiment = sums.n, _r(sums.mean)
        else:
            contrast.unsolicited, contrast.unsolicited_sentiment = sums.n, _r(sums.mean)
    return dict(now), dict(before), dict(feedback), totals, dict(stage_weeks)


def _split_themes(
    rows: list[tuple[Any, ...]], weeks: list[str]
) -> tuple[SumsTable, SumsTable, SumsTable]:
    """The theme scan's groups → (stage × theme now, before, week × theme)."""
    in_window = set(weeks)
    now: SumsTable = defaultdict(Sums)
    before: SumsTable = defaultdict(Sums)
    theme_weeks: SumsTable = defaultdict(Sums)
    for bucket, week, stage, theme, *numbers in rows:
        sums = _sums(numbers, 0)
        if bucket == _CURRENT:
            now[(stage, theme)].add(sums)
        elif bucket == _PREVIOUS:
            before[(stage, theme)].add(sums)
        if week in in_window:
            theme_weeks[(week, theme)].add(sums)
    return dict(now), dict(before), dict(theme_weeks)


_EMOTION_LABELS = {
    "frustration_anger": "Frustration",
    "confusion": "Confusion",
    "worry": "Worry",
    "disappointment": "Disappointment",
    "relief_satisfaction": "Relief",
    "gratitude_delight": "Gratitude",
}


def _emotions(
    conn: Connection, period: Period, filters: Filters
) -> dict[str, list[tuple[str, int, str | None]]]:
    """Per stage, the journey emotions its conversations show, most common first: (emotion,
    conversations, the sentence of its strongest showing)."""
    emotion: Any
    score: Any
    sentence: Any
    if conn.dialect.name == "postgresql":
        shown = func.json_array_elements(K.c.emotions).table_valued("value")
        emotion = shown.c.value.op("->>")("emotion")
        score = shown.c.value.op("->>")("score").cast(Float)
        sentence = shown.c.value.op("->>")("sentence")
    else:
        shown = func.json_each(K.c.emotions).table_valued("value")
        emotion = func.json_extract(shown.c.value, "$.emotion")
        score = func.json_extract(shown.c.value, "$.score")
        sentence = func.json_extract(shown.c.value, "$.sentence")
    rows = (
        select(
            K.c.stage.label("stage"),
            emotion.label("emotion"),
            sentence.label("sentence"),
            func.count().over(partition_by=(K.c.stage, emotion)).label("n"),
            func.row_number()
            .over(
                partition_by=(K.c.stage, emotion),
                # a quote a person can read: a sentence of some words (not a lone "❓")
                order_by=(case((func.length(sentence) >= 12, 0), else_=1), score.desc(), C.c.id),
            )
            .label("rn"),
        )
        .select_from(C.join(K, K.c.conversation_id == C.c.id))
        .join(shown, true())
        .where(*_where(period, filters), K.c.stage.is_not(None), K.c.emotions.is_not(None))
        .subquery()
    )
    query = (
        select(rows.c.stage, rows.c.emotion, rows.c.n, rows.c.sentence)
        .where(rows.c.rn == 1)
        .order_by(rows.c.stage, rows.c.n.desc(), rows.c.emotion)
    )
    result: dict[str, list[tuple[str, int, str | None]]] = defaultdict(list)
    for stage, name, n, quote in conn.execute(query):
        result[stage].append((str(name), int(n), quote))
    return dict(result)


PHRASE_SAMPLE = 800  # conversations per stage the phrase miner reads (a deterministic sample)


def _phrases(
    conn: Connection, period: Period, filters: Filters, limit: int
) -> dict[str, list[StagePhrase]]:
    """What customers do and think at each stage: readable key phrases ("track my parcel",
    "charged twice") mined from the customers' evidence sentences by `miner.key_phrases`,
    chosen by how distinctive they are of the stage. SQL hands over a fixed-size, deterministic
    sample per stage (ids scrambled by a multiplicative hash), so the cost does not grow with
    the period's volume."""
    if conn.dialect.name == "sqlite":
        rows = _phrase_sample_by_residue(conn, period, filters)
    else:  # PostgreSQL ranks fast, and its large IN lists are slow: the same sample
        rows = _phrase_sample_ranked(conn, period, filters)
    rows.sort(key=lambda row: (row[0], row[3]))
    groups: dict[str, list[list[str]]] = defaultdict(list)
    query = [row[:3] for row in rows]
    for stage, said, evidence in query:
        if isinstance(evidence, str):
            evidence = json.loads(evidence)
        sentences = list(dict.fromkeys([said, *(evidence or [])]))
        groups[str(stage)].append(documents_of(sentences))
    return {
        stage: [StagePhrase(p.phrase, p.documents, p.quote) for p in found]
        for stage, found in key_phrases(groups, limit=limit).items()
    }


SCRAMBLE_BY, SCRAMBLE_MOD = 7919, 10007  # the sample's order: (id × 7919 mod 10007, id)
PHRASE_LOOKUPS = 150_000  # ids looked up by key before the rest falls back to one ranking


def _phrase_sample_by_residue(
    conn: Connection, period: Period, filters: Filters
) -> list[tuple[Any, ...]]:
    """`_phrase_sample` over every stage, without reading the period: the conversations whose
    scramble is v are exactly the ids ≡ v × 7919⁻¹ (mod 10007), so the ids are walked in
    scramble order and looked up by primary key, a few scramble values at a time, until each
    stage holds PHRASE_SAMPLE (a value's ids all come before the next value's, so a full stage's
    first PHRASE_SAMPLE are final). Stages still short after PHRASE_LOOKUPS ids (a rare stage,
    or a narrow segment) take the ranking over the period's rows. The same sample either way."""
    low = conn.execute(select(func.min(C.c.id))).scalar_one()  # off the primary key: the
    high = conn.execute(select(func.max(C.c.id))).scalar_one()  # ids outside the period miss
    if low is None:
        return []
    inverse = pow(SCRAMBLE_BY, -1, SCRAMBLE_MOD)
    per_value = (high - low) // SCRAMBLE_MOD + 1  # ids per scramble value, at most
    found: dict[str, list[tuple[int, int]]] = defaultdict(list)  # stage → (scramble, id)
    short = _stages(conn)
    value, looked_up, step = 0, 0, max(1, 2000 // per_value)
    while short and value < SCRAMBLE_MOD and looked_up < PHRASE_LOOKUPS:
        values = range(value, min(value + step, SCRAMBLE_MOD))
        ids: list[int] = []
        for v in values:
            residue = (v * inverse) % SCRAMBLE_MOD
            ids += range(low + (residue - low) % SCRAMBLE_MOD, high + 1, SCRAMBLE_MOD)
        looked_up += len(ids)
        for start in range(0, len(ids), 5000):
            query = (
                select(K.c.stage, C.c.id)
                .select_from(C.join(K, K.c.conversation_id == C.c.id))
                .where(C.c.id.in_(ids[start : start + 5000]), *_where(period, filters),
                       K.c.stage.concat("").in_(sorted(short)))  # by id, not stage
            )  # fmt: skip
            for stage, cid in conn.execute(query):
                found[str(stage)].append(((cid * SCRAMBLE_BY) % SCRAMBLE_MOD, int(cid)))
        value, step = values[-1] + 1, step * 2
        short = {stage for stage in short if len(found[stage]) < PHRASE_SAMPLE}
    rows = []
    for stage, pairs in found.items():
        if stage in short and value < SCRAMBLE_MOD:
            continue  # not all its values were walked: ranked in SQL below
        ranks = {cid: rank for rank, (_v, cid) in enumerate(sorted(pairs)[:PHRASE_SAMPLE], 1)}
        listed = sorted(ranks)
        for start in range(0, len(listed), 5000):
            for cid, said, evidence in conn.execute(
                select(K.c.conversation_id, K.c.stage_evidence, K.c.evidence).where(
                    K.c.conversation_id.in_(listed[start : start + 5000])
                )
            ):
                rows.append((stage, said, evidence, ranks[int(cid)]))
    if short and value < SCRAMBLE_MOD:  # stopped early: the short stages, ranked in SQL
        scramble = (C.c.id * SCRAMBLE_BY) % SCRAMBLE_MOD
        rows += _phrase_sample(conn, period, filters, scramble, [K.c.stage.in_(sorted(short))])
    return rows


PHRASE_PREFILTER = 2500  # of 10007 scramble values: a quarter of each stage's rows


def _phrase_sample_ranked(
    conn: Connection, period: Period, filters: Filters
) -> list[tuple[Any, ...]]:
    """`_phrase_sample` over every stage by ranking in SQL: a stage's first PHRASE_SAMPLE in
    (scramble, id) order all have a small scramble when the stage is large, so those rows are
    ranked first (no sort of the whole period), then the stages that did not fill their sample
    that way are ranked again over all their rows. Same sample as `_phrase_sample_by_residue`."""
    scramble = (C.c.id * SCRAMBLE_BY) % SCRAMBLE_MOD
    rows = _phrase_sample(conn, period, filters, scramble, [scramble < PHRASE_PREFILTER])
    full = {stage for stage, n in Counter(row[0] for row in rows).items() if n >= PHRASE_SAMPLE}
    rows = [row for row in rows if row[0] in full]
    rows += _phrase_sample(conn, period, filters, scramble, [K.c.stage.not_in(sorted(full))])
    return rows


def _stages(conn: Connection) -> set[str]:
    """Every stage the classifications name, one index seek each (not a scan of the index)."""
    found: set[str] = set()
    stage = conn.execute(select(func.min(K.c.stage))).scalar_one()
    while stage is not None:
        found.add(str(stage))
        stage = conn.execute(select(func.min(K.c.stage)).where(K.c.stage > stage)).scalar_one()
    return found


def _phrase_sample(
    conn: Connection, period: Period, filters: Filters, scramble: Any, extra: list[Any]
) -> list[tuple[Any, ...]]:
    """(stage, stage evidence, evidence, rank) of the first PHRASE_SAMPLE staged conversations
    per stage in (scramble, id) order, among the period's rows matching `extra`. The ranking
    sorts only (stage, id) pairs; the sentences are fetched afterwards."""
    rank = func.row_number().over(partition_by=K.c.stage, order_by=(scramble, C.c.id))
    sample = (
        select(K.c.stage.label("stage"), C.c.id.label("cid"), rank.label("rn"))
        .select_from(C.join(K, K.c.conversation_id == C.c.id))
        .where(*_where(period, filters), K.c.stage.is_not(None), *extra)
        .subquery()
    )
    query = (
        select(sample.c.stage, K.c.stage_evidence, K.c.evidence, sample.c.rn)
        .select_from(sample.join(K, K.c.conversation_id == sample.c.cid))
        .where(sample.c.rn <= PHRASE_SAMPLE)
    )
    return [tuple(row) for row in conn.execute(query)]


def _verbatims(
    conn: Connection,
    period: Period,
    filters: Filters,
    stage_theme: Mapping[tuple[str | None, str], Sums],
    stage_names: list[str],
    options: MapOptions,
) -> dict[str, list[Verbatim]]:
    """Representative quotes: for each stage's top pain themes, the negative conversation most
    typical of the theme (highest theme score; a non-negative one only when there is none),
    quoted by the customer's own sentence that shows the theme, plus the CSAT comment of the
    stage's most negative conversation."""
    per_stage = options.verbatims_per_stage
    pairs = []
    for stage in stage_names:
        ranked = sorted(
            ((th, v.n) for (st, th), v in stage_theme.items() if st == stage),
            key=lambda item: (-item[1], item[0]),
        )
        pairs += [(stage, th) for th, _n in ranked[:per_stage]]
    candidates: list[tuple[Any, ...]] = []
    if conn.dialect.name == "sqlite":
        for stage, theme in pairs:
            candidates += _verbatim_candidates(conn, period, filters, stage, theme)
    elif pairs:
        # most pairs' top three are negative and typical (score ≥ 0.9): rank only those rows
        # first, which spares sorting the whole period; a pair with fewer than three such rows
        # is ranked again over all its rows. Either way a pair's top three are the true ones.
        strong = [K.c.sentiment < NEGATIVE, T.c.score >= STRONG_SCORE]
        candidates = _ranked_candidates(conn, period, filters, pairs, strong)
        found: dict[tuple[str, str], int] = defaultdict(int)
        for row in candidates:
            found[(row[4], row[5])] += 1
        short = [pair for pair in pairs if found[pair] < 3]
        if short:
            candidates = [row for row in candidates if found[(row[4], row[5])] >= 3]
            candidates += _ranked_candidates(conn, period, filters, short, [])
    texts = _first_customer_texts(conn, {row[0] for row in candidates}, solicited=False)

    result: dict[str, list[Verbatim]] = defaultdict(list)
    used: set[int] = set()
    order = {pair: i for i, pair in enumerate(pairs)}
    candidates.sort(key=lambda row: (order[(row[4], row[5])], row[7]))
    taken: set[tuple[str, str]] = set()
    for cid, external_id, channel, created_at, stage, theme, sentiment, _rn, said in candidates:
        if (stage, theme) in taken or cid in used or not (said or texts.get(cid)):
            continue
        taken.add((stage, theme))
        used.add(cid)
        result[stage].append(
            Verbatim(
                cid,
                external_id,
                stage,
                theme,
                _r(sentiment) or 0.0,
                channel,
                created_at,
                said or texts[cid],  # the sentence that shows the theme, else the first message
            )
        )
    for verbatim in _csat_verbatims(conn, period, filters, stage_names):
        result[verbatim.stage or ""].append(verbatim)
    return dict(result)


def _verbatim_candidates(
    conn: Connection, period: Period, filters: Filters, stage: str, theme: str
) -> list[tuple[Any, ...]]:
    """The three best-ranked conversations of one (stage, theme) pair: negative first, then the
    highest theme score, the lowest sentiment, the oldest id. (id, ticket, channel, created,
    stage, theme, sentiment, rank, theme evidence).

    One small query per pair instead of a window ranking over the period: the index on
    (theme, score) hands the theme's rows over best score first, so the database stops after
    the first rows of the pair's stage and period that are negative (migration 0013). Only a
    pair with fewer than three negative conversations reads its other ones."""
    negative = K.c.sentiment < NEGATIVE
    order = (T.c.score.desc(), K.c.sentiment.asc(), C.c.id.asc())
    base = (
        select(
            C.c.id,
            C.c.external_id,
            C.c.channel,
            C.c.created_at,
            K.c.stage,
            T.c.theme,
            K.c.sentiment,
            T.c.evidence,
        )
        .select_from(
            T.join(K, K.c.conversation_id == T.c.conversation_id).join(
                C, C.c.id == T.c.conversation_id
            )
        )
        # `stage || ''`: no index for the stage, so SQLite walks the theme's rows best score
        # first (its own guess, the stage's rows, has to sort them all)
        .where(*_where(period, filters), T.c.theme == theme, K.c.stage.concat("") == stage)
    )
    rows = [tuple(r) for r in conn.execute(base.where(negative).order_by(*order).limit(3))]
    if len(rows) < 3:
        rest = base.where(or_(K.c.sentiment >= NEGATIVE, K.c.sentiment.is_(None)))
        rows += [tuple(r) for r in conn.execute(rest.order_by(*order).limit(3 - len(rows)))]
    return [(*row[:7], rank, row[7]) for rank, row in enumerate(rows, start=1)]


STRONG_SCORE = 0.9  # see _verbatims: the first, cheap ranking pass


def _ranked_candidates(
    conn: Connection,
    period: Period,
    filters: Filters,
    pairs: list[tuple[str, str]],
    extra: list[Any],
) -> list[tuple[Any, ...]]:
    """`_verbatim_candidates` of every pair in one window ranking, among the rows matching
    `extra` (PostgreSQL: its window sort is fast, its per-pair index walks are not)."""
    rank = func.row_number().over(
        partition_by=(K.c.stage, T.c.theme),
        order_by=(
            case((K.c.sentiment < NEGATIVE, 0), else_=1),
            T.c.score.desc(),
            K.c.sentiment.asc(),
            C.c.id.asc(),
        ),
    )
    # the ranking sorts narrow rows; the top three's text and details are joined after
    ranked_q = (
        select(
            C.c.id.label("cid"),
            K.c.stage.label("stage"),
            T.c.theme.label("theme"),
            K.c.sentiment.label("sentiment"),
            rank.label("rn"),
        )
        .select_from(
            C.join(K, K.c.conversation_id == C.c.id).join(T, T.c.conversation_id == C.c.id)
        )
        .where(*_where(period, filters), tuple_(K.c.stage, T.c.theme).in_(pairs), *extra)
        .subquery()
    )
    top = select(ranked_q).where(ranked_q.c.rn <= 3).subquery()
    details = select(
        top.c.cid,
        C.c.external_id,
        C.c.channel,
        C.c.created_at,
        top.c.stage,
        top.c.theme,
        top.c.sentiment,
        top.c.rn,
        T.c.evidence,
    ).select_from(
        top.join(C, C.c.id == top.c.cid).join(
            T, and_(T.c.conversation_id == top.c.cid, T.c.theme == top.c.theme)
        )
    )
    return [tuple(row) for row in conn.execute(details)]


def _csat_verbatims(
    conn: Connection, period: Period, filters: Filters, stage_names: Iterable[str]
) -> list[Verbatim]:
    """Per stage, the solicited (CSAT) comment of its most negative conversation. One query per
    stage, read in (stage, sentiment) index order (migration 0013), so the database stops at the
    first conversations with a comment instead of ranking every one of the period."""
    found = []
    for stage in stage_names:
        query = (
            select(C.c.id, C.c.external_id, C.c.channel, C.c.created_at, K.c.stage,
                   K.c.sentiment, M.c.text)
            .select_from(
                K.join(C, C.c.id == K.c.conversation_id).join(M, M.c.conversation_id == C.c.id)
            )
            .where(*_where(period, filters), K.c.stage == stage,
                   *customer_words(M, solicited=True))
            .order_by(K.c.sentiment.asc(), C.c.id.asc(), M.c.id.asc())
            .limit(1)
        )  # fmt: skip
        found += [
            Verbatim(cid, ext, stage_, None, _r(sent) or 0.0, ch, created, _excerpt(text), True)
            for cid, ext, ch, created, stage_, sent, text in conn.execute(query)
        ]
    return found


def _first_customer_texts(
    conn: Connection, ids: Iterable[int], *, solicited: bool
) -> dict[int, str]:
    """The first public, redacted customer message of each conversation, as a short excerpt."""
    wanted = sorted(ids)
    if not wanted:
        return {}
    query = (
        select(M.c.conversation_id, M.c.text)
        .where(
            M.c.conversation_id.in_(wanted),
            *customer_words(M, solicited=solicited),
        )
        .order_by(M.c.conversation_id, M.c.created_at, M.c.id)
    )
    texts: dict[int, str] = {}
    for cid, text in conn.execute(query):
        texts.setdefault(cid, _excerpt(text))
    return texts


def _trend_weeks(period: Period, options: MapOptions) -> tuple[list[str], datetime]:
    """The trend window's weeks: the period plus enough weeks before it to serve as the spike
    tests' baseline (at least 12 weeks in all), and the instant it starts (a Monday, UTC)."""
    first = date.fromisoformat(week_of(period.start)) - timedelta(
        weeks=options.spikes.baseline_weeks
    )
    last = date.fromisoformat(week_of(period.end - timedelta(microseconds=1)))
    first = min(first, last - timedelta(weeks=MIN_TREND_WEEKS - 1))
    start = datetime.combine(first, time(), tzinfo=UTC)
    return weeks_between(start, period.end), start


# ---- assembly ---------------------------------------------------------------------------------


def _spikes_and_trends(
    period: Period,
    weeks: list[str],
    week_totals: Mapping[str, Sums],
    theme_weeks: Mapping[tuple[str, str], Sums],
    theme_names: list[str],
    labels: _Labels,
    config: SpikeConfig,
) -> tuple[list[Spike], list[ThemeTrend]]:
    series = {
        th: [Cell(v.n, v.s, v.ss) if (v := theme_weeks.get((w, th))) else Cell() for w in weeks]
        for th in theme_names
    }
    first = week_of(period.start)
    test_from = weeks.index(first) if first in weeks else 0
    results = detect_spikes(
        [week_totals[w].n for w in weeks], series, test_from=test_from, config=config
    )
    spikes = [
        Spike(
            theme=r.theme,
            label=labels.theme(r.theme),
            week=weeks[r.week_index],
            metric=r.metric,
            observed=_r(r.observed) or 0.0,
            expected=_r(r.expected) or 0.0,
            effect=float(round(r.effect, 4)) if math.isfinite(r.effect) else 999.0,
            n=r.n,
            p_value=float(f"{r.p_value:.3g}"),
            q_value=float(f"{r.q_value:.3g}"),
        )
        for r in results
        if r.flagged
    ]
    spikes.sort(key=lambda s: (s.week, s.theme, s.metric))
    trends = [
        ThemeTrend(
            th,
            labels.theme(th),
            [
                WeekPoint(w, c.n, _r(c.sentiment_sum / c.n) if c.n else None)
                for w, c in zip(weeks, cells, strict=True)
            ],
        )
        for th, cells in series.items()
        if any(c.n for c in cells)
    ]
    return spikes, trends


def _by_stage(rows: Mapping[tuple[str | None, str], Sums]) -> dict[str | None, Sums]:
    result: dict[str | None, Sums] = defaultdict(Sums)
    for (stage, _channel), sums in rows.items():
        result[stage].add(sums)
    return dict(result)


def _theme_counts(
    current: Mapping[str, Sums],
    previous: Mapping[str, int],
    base: int,
    labels: _Labels,
    limit: int | None,
) -> list[ThemeCount]:
    ranked = sorted(current.items(), key=lambda item: (-item[1].n, item[0]))
    if limit is not None:
        ranked = ranked[:limit]
    return [
        ThemeCount(
            theme=theme,
            label=labels.theme(theme),
            conversations=sums.n,
            share=_share(sums.n, base),
            previous_conversations=previous.get(theme, 0),
            change=_change(sums.n, previous.get(theme, 0)),
            mean_sentiment=_r(sums.mean),
            negative_share=_share(sums.neg, sums.n) if sums.n else None,
        )
        for theme, sums in ranked
    ]


def _stage_order(taxonomy: Taxonomy, *tables: Mapping[tuple[str | None, str], Sums]) -> list[str]:
    """The taxonomy's stages in journey order, then any stage found in the data but no longer in
    the taxonomy (so renamed stages do not silently vanish from the map)."""
    known = list(taxonomy.stage_names)
    extra = {st for table in tables for (st, _x) in table if st is not None and st not in known}
    return known + sorted(extra)


def _theme_order(
    taxonomy: Taxonomy, stage_theme: Mapping[tuple[str | None, str], Sums]
) -> list[str]:
    known = list(taxonomy.theme_names)
    extra = {th for (_st, th) in stage_theme if th not in known}
    return known + sorted(extra)


def _stats(sums: Sums) -> SentimentStats:
    if not sums.n:
        return SentimentStats(n=0)
    mean = sums.s / sums.n
    sd = (
        math.sqrt(max(sums.ss - sums.s * sums.s / sums.n, 0.0) / (sums.n - 1))
        if sums.n > 1
        else 0.0
    )
    half = 1.96 * sd / math.sqrt(sums.n)
    return SentimentStats(
        n=sums.n,
        mean=_r(mean),
        sd=_r(sd),
        ci_low=_r(mean - half),
        ci_high=_r(mean + half),
        negative_share=_share(sums.neg, sums.n),
    )


class _Labels:
    def __init__(self, taxonomy: Taxonomy) -> None:
        self._stages = {s.name: s for s in taxonomy.stages}
        self._themes = {t.name: t for t in taxonomy.themes}

    def stage(self, name: str) -> str:
        found = self._stages.get(name)
        return found.label if found else _humanise(name)

    def stage_description(self, name: str) -> str:
        found = self._stages.get(name)
        return found.description if found else ""

    def theme(self, name: str) -> str:
        found = self._themes.get(name)
        return found.label if found else _humanise(name)


def _humanise(name: str) -> str:
    return name.replace("_", " ").capitalize()


_SPACE = re.compile(r"\s+")


def _excerpt(text: str, limit: int = VERBATIM_CHARS) -> str:
    """The quote as shown: whole, or cut after its last full sentence within `limit` characters
    (between words, with "…", only when the first sentence alone is longer)."""
    flat = _SPACE.sub(" ", text).strip()
    if len(flat) <= limit:
        return flat
    head = flat[: limit + 1]
    sentence_end = max(head.rfind(mark) for mark in (". ", "! ", "? "))
    if sentence_end >= limit // 3:
        return flat[: sentence_end + 1]
    cut = flat[:limit].rsplit(" ", 1)[0].rstrip(",.;:-")
    return cut + "…"


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _change(current: int, previous: int) -> float | None:
    """Relative change; None ("new") when only this period has any, 0 when neither has."""
    if not previous:
        return None if current else 0.0
    return round((current - previous) / previous, 4)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


__all__ = ["MapOptions", "build_map"]
