"""Conversations not in English are counted in the sync summary, not silently dropped."""

from __future__ import annotations

from sqlalchemy import func, select

from journey.db import session_scope
from journey.models import Classification
from tests.test_sync_integration import World, world  # noqa: F401 - the simulator fixture


def test_the_sync_summary_counts_conversations_not_in_english(world: World) -> None:  # noqa: F811
    report = world.sync(writeback=False)
    with session_scope(world.engine) as session:
        stored = session.execute(
            select(func.count())
            .select_from(Classification)
            .where(Classification.language.is_not(None), Classification.language != "en")
        ).scalar_one()
        staged = session.execute(
            select(func.count())
            .select_from(Classification)
            .where(Classification.language != "en", Classification.stage.is_not(None))
        ).scalar_one()
    foreign_truth = sum(1 for t in world.sim.ticket_ids() if world.sim.truth(t)[2] != "en")
    assert report.not_english == stored > 0
    assert report.not_english <= foreign_truth  # the simulator's own non-English tickets
    assert staged == 0  # counted, and indeed not classified
    assert f"{report.not_english} conversations not in English: not classified" in report.notes[0]

    again = world.sync(writeback=False)  # nothing new was mined: nothing to report
    assert again.not_english == 0 and not again.notes
