"""Number and text formatting shared by the Markdown and HTML renderers, so both say the same."""

from __future__ import annotations

from journey.journey_map.model import Period


def pct(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


# Below this many conversations in the previous period a percentage misleads ("▲ 300 %" for
# 2 → 8), so the change is shown as a count instead ("▲ +6 (was 2)").
PERCENT_BASE = 10


def change(value: float | None, previous: int | None = None, current: int | None = None) -> str:
    """'▲ 12%', '▼ 5%', '± 0%', or 'new' when the previous period had none; with `current` given
    and fewer than PERCENT_BASE before, the absolute change: '▲ +6 (was 2)'."""
    if previous is not None and current is not None and 0 < previous < PERCENT_BASE:
        diff = current - previous
        if diff == 0:
            return "± 0"
        return f"{'▲' if diff > 0 else '▼'} {diff:+,} (was {previous:,})".replace("-", "−")
    if value is None:
        return "new" if previous == 0 else "–"
    if abs(value) < 0.005:
        return "± 0%"
    arrow = "▲" if value > 0 else "▼"
    return f"{arrow} {abs(value) * 100:.0f}%"


def sentiment(value: float | None) -> str:
    """'+0.25', '−0.31' style with a sign; a value that rounds to zero shows as '0.00'."""
    if value is None:
        return "–"
    return "0.00" if abs(value) < 0.005 else f"{value:+.2f}"


def mood(value: float | None) -> str:
    """A word for a mean sentiment, on VADER's thresholds (±0.05) and a stronger band (±0.35)."""
    if value is None:
        return "no data"
    if value <= -0.35:
        return "frustrated"
    if value < -0.05:
        return "unhappy"
    if value <= 0.05:
        return "neutral"
    if value < 0.35:
        return "content"
    return "delighted"


def period_label(period: Period) -> str:
    """'2024-05-01 → 2024-05-28' (the end is exclusive, so the last day shown is end − 1 day)."""
    from datetime import timedelta

    last = period.end - timedelta(microseconds=1)
    return f"{period.start.date().isoformat()} → {last.date().isoformat()}"


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
