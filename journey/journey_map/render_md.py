"""Markdown for a wiki page or a chat post: the journey matrix as a table (wikis render it), then
the same facts as headed bullet lists (chat tools that do not render tables still read well)."""

from __future__ import annotations

from collections.abc import Callable

from journey.journey_map import formatting as f
from journey.journey_map.model import JourneyMap, Spike, StageSummary
from journey.journey_map.render_flows_md import flows_md


def render_md(jm: JourneyMap) -> str:
    lines: list[str] = []
    add = lines.append
    add(f"# Customer journey map — {f.period_label(jm.period)}")
    add("")
    if jm.period_note:
        add(f"_{jm.period_note.capitalize()}._")
        add("")
    if jm.notice:
        add(f"**{jm.notice[0].upper()}{jm.notice[1:]}.**" + _filters(jm))
        add("")
        return "\n".join(lines).rstrip() + "\n"
    total = _rel(jm.conversations, jm.previous_conversations)
    add(
        f"**{jm.conversations:,}** conversations "
        f"({f.change(total, jm.previous_conversations, jm.conversations)}"
        f" vs {f.period_label(jm.previous)}), mean sentiment **{f.sentiment(jm.sentiment.mean)}**"
        f" ({f.mood(jm.sentiment.mean)}); {jm.unstaged:,} without a stage"
        + (f" ({jm.not_english:,} not in English: not classified)." if jm.not_english else ".")
        + _filters(jm)
    )
    add("")
    if jm.stages:
        _matrix(jm, add)
    if jm.opportunities:
        add("## Opportunities (volume × negativity × growth)")
        add("")
        for o in jm.opportunities:
            add(
                f"{o.rank}. **{o.theme_label}** at **{o.stage_label}** — "
                f"{o.summary.split(': ', 1)[-1]} (score {o.score:g})"
            )
        add("")
    flows_md(jm, add)
    add("")
    if jm.spikes:
        add("## Spikes")
        add("")
        for s in jm.spikes:
            add(f"- week of {s.week}: {_spike_text(s)}")
        add("")
    for stage in jm.stages:
        _stage_section(stage, add)
    if jm.themes:
        add("## Themes")
        add("")
        add("| theme | conversations | share | change | mean sentiment | negative |")
        add("|---|---:|---:|---:|---:|---:|")
        for t in jm.themes:
            add(
                f"| {f.md_cell(t.label)} | {t.conversations:,} | {f.pct(t.share, 1)} | "
                f"{f.change(t.change, t.previous_conversations, t.conversations)} | "
                f"{f.sentiment(t.mean_sentiment)} | {f.pct(t.negative_share)} |"
            )
        add("")
    return "\n".join(lines).rstrip() + "\n"


def _rel(current: int, previous: int) -> float | None:
    return (current - previous) / previous if previous else None


def _filters(jm: JourneyMap) -> str:
    parts = []
    if jm.filters.source:
        parts.append(f"source `{jm.filters.source}`")
    if jm.filters.channel:
        parts.append(f"channel `{jm.filters.channel}`")
    parts += [f"`{k}={v}`" for k, v in sorted(jm.filters.segment.items())]
    return f" Filtered to {', '.join(parts)}." if parts else ""


def _matrix(jm: JourneyMap, emit: Callable[[str], None]) -> None:
    header = "| | " + " | ".join(f"**{f.md_cell(s.label)}**" for s in jm.stages) + " |"
    emit(header)
    emit("|---|" + "---|" * len(jm.stages))
    rows = {
        "Volume": [
            f"{s.conversations:,} ({f.pct(s.share)}) "
            f"{f.change(s.change, s.previous_conversations, s.conversations)}"
            for s in jm.stages
        ],
        "Touchpoints": [
            ", ".join(f"{c.channel} {f.pct(c.share)}" for c in s.channels[:3]) or "–"
            for s in jm.stages
        ],
        "What customers do / think": ["; ".join(s.actions) or "–" for s in jm.stages],
        "Emotion": [
            f"{f.sentiment(s.sentiment.mean)} {f.mood(s.sentiment.mean)}"
            + (f" (±{s.sentiment.sd:.2f})" if s.sentiment.sd is not None else "")
            for s in jm.stages
        ],
        "Feelings": [
            "; ".join(
                f"{e.label} {f.pct(e.share)}" + (f" “{e.quote}”" if e.quote else "")
                for e in s.emotions
            )
            or "–"
            for s in jm.stages
        ],
        "Pain points": [
            "; ".join(
                f"{p.label} {p.conversations} "
                f"{f.change(p.change, p.previous_conversations, p.conversations)}"
                for p in s.pain_points[:3]
            )
            or "–"
            for s in jm.stages
        ],
        "Opportunities": [
            "; ".join(o.theme_label for o in s.opportunities[:2]) or "–" for s in jm.stages
        ],
    }
    for name, cells in rows.items():
        emit(f"| **{name}** | " + " | ".join(f.md_cell(c) for c in cells) + " |")
    emit("")


def _spike_text(s: Spike) -> str:
    if s.metric == "volume":
        return (
            f"**{s.label}** volume {s.observed:g} vs {s.expected:.1f} expected "
            f"(×{s.effect:.1f}, q={s.q_value:.2g})"
        )
    return (
        f"**{s.label}** sentiment {s.observed:+.2f} vs {s.expected:+.2f} baseline "
        f"({s.effect:+.2f}, n={s.n}, q={s.q_value:.2g})"
    )


def _stage_section(stage: StageSummary, emit: Callable[[str], None]) -> None:
    s = stage
    emit(f"## {s.label}")
    emit("")
    if not s.conversations:
        emit(
            f"No conversations at this stage ({s.previous_conversations:,} in the previous period)."
        )
        emit("")
        return
    emit(
        f"- **Volume:** {s.conversations:,} conversations ({f.pct(s.share, 1)} of all), "
        f"{f.change(s.change, s.previous_conversations, s.conversations)} vs previous period"
    )
    if s.channels:
        emit(
            "- **Touchpoints:** "
            + ", ".join(f"{c.channel} {c.conversations:,} ({f.pct(c.share)})" for c in s.channels)
        )
    emit(
        f"- **Emotion:** mean {f.sentiment(s.sentiment.mean)} ({f.mood(s.sentiment.mean)}), "
        f"sd {f.sentiment(s.sentiment.sd).lstrip('+')}, n={s.sentiment.n:,}; "
        f"previous {f.sentiment(s.previous_sentiment)}"
    )
    fb = s.feedback
    if fb.solicited or fb.unsolicited:
        emit(
            f"- **CSAT vs unsolicited:** {fb.solicited:,} with a CSAT comment "
            f"(mean {f.sentiment(fb.solicited_sentiment)}), {fb.unsolicited:,} without "
            f"(mean {f.sentiment(fb.unsolicited_sentiment)})"
        )
    if s.pain_points:
        emit("- **Pain points:**")
        for p in s.pain_points:
            emit(
                f"  - {p.label}: {p.conversations:,} ({f.pct(p.share)} of stage), "
                f"{f.change(p.change, p.previous_conversations, p.conversations)}, "
                f"sentiment {f.sentiment(p.mean_sentiment)}"
            )
    for o in s.opportunities[:2]:
        emit(f"- **Opportunity:** {o.summary}")
    emit("")  # a blank line, so the quotes do not continue the last list item
    for v in s.verbatims:
        kind = "CSAT comment" if v.solicited else (v.theme or "").replace("_", " ")
        emit(f"> “{v.text}” — {v.channel}, {kind}, {f.sentiment(v.sentiment)}")
        emit("")
