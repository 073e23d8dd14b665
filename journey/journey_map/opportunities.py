"""Opportunity ranking: where fixing things helps most customers.

score = volume × negativity × growth for each stage × theme cell, where
- volume × negativity = the number of conversations in the cell with negative sentiment
  (customers actually hurting, not just mentioning the theme), and
- growth = (this period's count + k) / (the previous period's count, scaled to this period's total
  volume, + k), clipped to [0.5, 2]. The pseudo-count k shrinks small cells towards "no change" so a
  jump from 1 to 4 does not outrank a steady pain felt by hundreds; the clip keeps growth a
  tie-breaker between cells of similar size rather than the whole story.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from journey.journey_map.model import Opportunity

PSEUDO_COUNT = 5.0
GROWTH_CLIP = (0.5, 2.0)


@dataclass(frozen=True, slots=True)
class CellStats:
    conversations: int
    negative: int
    mean_sentiment: float | None


def growth_factor(current: int, previous: int, current_total: int, previous_total: int) -> float:
    """Shrunk, volume-adjusted, clipped ratio of this period's count to the previous one's."""
    if previous_total <= 0 or current_total <= 0:
        return 1.0
    expected = previous * current_total / previous_total
    ratio = (current + PSEUDO_COUNT) / (expected + PSEUDO_COUNT)
    return min(max(ratio, GROWTH_CLIP[0]), GROWTH_CLIP[1])


def rank_opportunities(
    cells: Mapping[tuple[str, str], CellStats],
    previous: Mapping[tuple[str, str], int],
    *,
    current_total: int,
    previous_total: int,
    stage_label: Callable[[str], str],
    theme_label: Callable[[str], str],
    limit: int = 10,
) -> list[Opportunity]:
    """The `limit` best stage × theme cells, best first (ties: more conversations, then names)."""
    scored = []
    for (stage, theme), cell in cells.items():
        if cell.negative <= 0:
            continue
        growth = growth_factor(
            cell.conversations, previous.get((stage, theme), 0), current_total, previous_total
        )
        scored.append((cell.negative * growth, stage, theme, cell, growth))
    scored.sort(key=lambda s: (-s[0], -s[3].conversations, s[1], s[2]))
    result = []
    for rank, (score, stage, theme, cell, growth) in enumerate(scored[:limit], start=1):
        result.append(
            Opportunity(
                rank=rank,
                stage=stage,
                theme=theme,
                stage_label=stage_label(stage),
                theme_label=theme_label(theme),
                score=round(score, 2),
                conversations=cell.conversations,
                negative_conversations=cell.negative,
                growth=round(growth, 3),
                mean_sentiment=cell.mean_sentiment,
                summary=_summary(stage_label(stage), theme_label(theme), cell, growth),
            )
        )
    return result


def _summary(stage: str, theme: str, cell: CellStats, growth: float) -> str:
    share = cell.negative / cell.conversations if cell.conversations else 0.0
    trend = "growing" if growth >= 1.2 else "shrinking" if growth <= 0.83 else "steady"
    return (
        f"Fix {theme.lower()} at {stage.lower()}: {cell.negative} of {cell.conversations} "
        f"conversations negative ({share:.0%}), {trend}"
    )
