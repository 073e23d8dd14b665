"""Markdown for `cjm map --compare`: a table per segment (stages as columns), differences in
bold with their gap, then each segment's flows line."""

from __future__ import annotations

from journey.journey_map import formatting as f
from journey.journey_map.compare import Comparison


def render_compare_md(cmp: Comparison) -> str:
    lines = [f"# Customer journey map by {cmp.field} — {f.period_label(cmp.period)}", ""]
    if cmp.period_note:
        lines += [f"_{cmp.period_note.capitalize()}._", ""]
    lines += [
        "**Bold** = differs from the other segments pooled (stage share ≥ 5 points, mean "
        "sentiment ≥ 0.10, a different top pain, backward share or churn per customer ≥ 5 "
        "points).",
        "",
    ]
    head = "| | " + " | ".join(f.md_cell(cmp.stage_labels[n]) for n in cmp.stage_names) + " |"
    rule = "|---|" + "---|" * len(cmp.stage_names)
    for seg in cmp.segments:
        lines += [
            f"## {cmp.field} = {f.md_cell(seg.value)}",
            "",
            f"{seg.conversations:,} conversations ({f.pct(seg.share_of_all)} of the compared), "
            f"mean sentiment {f.sentiment(seg.mean_sentiment)}.",
            "",
            head,
            rule,
        ]
        share = [
            _bold(f"{f.pct(c.share)} ({c.conversations:,})"
                  + (f" {(c.share_gap or 0.0) * 100:+.0f} pts" if "share" in c.highlights else ""),
                  "share" in c.highlights)
            for c in seg.stages
        ]  # fmt: skip
        mood = [
            _bold(f"{f.sentiment(c.mean_sentiment)} {f.mood(c.mean_sentiment)}"
                  + (f" ({c.sentiment_gap:+.2f})" if "sentiment" in c.highlights else ""),
                  "sentiment" in c.highlights)
            for c in seg.stages
        ]  # fmt: skip
        pain = [_bold(c.top_pain_label or "–", "pain" in c.highlights) for c in seg.stages]
        for name, cells in (("Volume share", share), ("Emotion", mood), ("Top pain", pain)):
            lines.append(f"| **{name}** | " + " | ".join(f.md_cell(c) for c in cells) + " |")
        fl = seg.flows
        lines += [
            "",
            f"Flows: {fl.customers:,} customers, {fl.moves:,} moves, "
            + _bold(f"backward {f.pct(fl.backward_share)}", "backwards" in fl.highlights)
            + f", {fl.repeats:,} repeats, "
            + _bold(
                f"{fl.churn:,} churn signals ({f.pct(fl.churn_rate, 1)} of customers)",
                "churn" in fl.highlights,
            )
            + ".",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def _bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text
