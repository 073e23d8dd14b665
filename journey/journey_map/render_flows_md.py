"""The Markdown form of "How customers move": journeys, moves between stages, backwards moves,
repeats and churn signals with example paths (render_md calls it after the opportunities)."""

from __future__ import annotations

from collections.abc import Callable

from journey.journey_map import formatting as f
from journey.journey_map.model import FlowSignal, JourneyMap


def flows_md(jm: JourneyMap, emit: Callable[[str], None]) -> None:
    stage = {s.name: s.label for s in jm.stages}
    j, fl = jm.journeys, jm.flows
    emit("## How customers move")
    emit("")
    emit(
        f"{j.customers:,} customers wrote in this period (previous {j.previous_customers:,}); "
        f"{j.returning:,} had two or more staged conversations"
        + (f"; {j.merged:,} wrote to more than one helpdesk" if j.merged else "")
        + f". **{fl.moves:,}** moves between stages "
        f"({f.change(fl.change, fl.previous_moves, fl.moves)} vs the previous period)."
    )
    emit("")
    if fl.links:
        emit("| from | to | moves | change | direction |")
        emit("|---|---|---:|---:|---|")
        for lk in fl.links[:15]:
            emit(
                f"| {f.md_cell(stage.get(lk.source, lk.source))} | "
                f"{f.md_cell(stage.get(lk.target, lk.target))} | {lk.moves:,} | "
                f"{f.change(lk.change, lk.previous_moves, lk.moves)} | {lk.direction} |"
            )
        emit("")
    if j.paths:
        emit("Most common paths: " + "; ".join(
            " → ".join(stage.get(s, s) for s in p.stages) + (" → …" if p.longer else "")
            + f" ({p.customers:,})" for p in j.paths
        ))  # fmt: skip
        emit("")
    titles = (
        (fl.backwards, "Backwards moves", "back to"),
        (fl.repeats, f"Repeats ({fl.repeat_contacts}+ contacts on one theme)", ""),
        (fl.churn, f"Churn signals (negative, then {fl.churn_days} days silent)", "ended at"),
    )
    for signal, title, keyword in titles:
        if signal is not None:
            _signal(signal, title, keyword, stage, emit)
    emit("")
    if fl.churn_pending:
        emit(f"{fl.churn_pending:,} more negative last contacts are too recent to judge.")


def _signal(
    sig: FlowSignal,
    title: str,
    keyword: str,
    stage: dict[str, str],
    emit: Callable[[str], None],
) -> None:
    emit(
        f"- **{title}:** {sig.count:,} ({f.change(sig.change, sig.previous, sig.count)}; "
        f"{sig.customers:,} customers)"
        + (
            " — " + ", ".join(f"{keyword} {b.label} {b.count:,}".strip() for b in sig.breakdown[:4])
            if sig.breakdown
            else ""
        )
    )
    for e in sig.examples:
        path = " → ".join(
            f"{stage.get(s.stage, s.stage) if s.stage else 'unstaged'} ({s.created_at:%m-%d})"
            + (f" “{s.quote}”" if s.quote else "")
            for s in e.steps
        )
        emit(f"  - {e.customer}: {f.md_cell(path)}")
