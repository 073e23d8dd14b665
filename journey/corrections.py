"""An agent's correction from the sidebar app: a training label and the ticket's new desired state.

Both are committed in one transaction (a crash cannot keep one without the other): the `label`
row says who corrected what and when (`origin` names the app), and the outbox row's desired
state takes the agent's stage and/or themes under `desired["agent"]`, which re-mining keeps
(`writeback.with_override`): agents win, the miner never writes over them. The write itself is
the ordinary write-back path (`writeback.write_back`), limited to this one conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from journey.db import session_scope
from journey.errors import ConfigError
from journey.models import Classification, Label, Writeback, utcnow
from journey.store import themes_of
from journey.ticket_view import TicketRef
from journey.writeback import desired_state, with_override
from miner import Taxonomy


@dataclass(frozen=True)
class Correction:
    stage: str | None
    themes: list[str] | None  # None: the agent left the themes as they are


def parse_correction(body: Any, taxonomy: Taxonomy) -> Correction:
    """The JSON body `{"stage": "delivery", "themes": ["refunds_and_returns"]}` (either key may
    be left out, not both), checked against the taxonomy; ConfigError names what is wrong."""
    if not isinstance(body, dict):
        raise ConfigError('the body must be a JSON object such as {"stage": "delivery"}')
    unknown = sorted(set(body) - {"stage", "themes", "agent"})
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}: use stage, themes (and agent)")
    stage, themes = body.get("stage"), body.get("themes")
    if stage is None and themes is None:
        raise ConfigError('give "stage" and/or "themes"')
    if stage is not None:
        if not isinstance(stage, str) or stage not in taxonomy.stage_names:
            raise ConfigError(
                f"unknown stage {stage!r}: use one of {', '.join(taxonomy.stage_names)}"
            )
    if themes is not None:
        if not isinstance(themes, list) or not all(isinstance(t, str) for t in themes):
            raise ConfigError('"themes" must be a list of theme names')
        bad = [t for t in themes if t not in taxonomy.theme_names]
        if bad:
            raise ConfigError(
                f"unknown theme(s) {', '.join(map(repr, bad))}: use names such as "
                f"{', '.join(list(taxonomy.theme_names)[:4])}"
            )
        themes = [t for t in taxonomy.theme_names if t in themes]  # taxonomy order, no repeats
    return Correction(stage=stage, themes=themes)


def record_correction(
    engine: Engine,
    ref: TicketRef,
    correction: Correction,
    *,
    labeller: str,
    origin: str,
) -> int:
    """Store the label and point the outbox at the agent's values; returns the label's id.

    The label's themes are the agent's, or the miner's current themes when the agent changed
    only the stage (what the ticket shows after the correction)."""
    with session_scope(engine) as session:
        classification = session.execute(
            select(Classification).where(Classification.conversation_id == ref.conversation_id)
        ).scalar_one_or_none()
        outbox = session.execute(
            select(Writeback).where(Writeback.conversation_id == ref.conversation_id)
        ).scalar_one_or_none()
        miner_themes = themes_of(session, [ref.conversation_id])[ref.conversation_id]
        previous = dict((outbox.desired.get("agent") or {}) if outbox is not None else {})
        agent: dict[str, Any] = {
            "stage": correction.stage or previous.get("stage"),
            "themes": correction.themes
            if correction.themes is not None
            else previous.get("themes"),
            "by": labeller,
            "at": utcnow().isoformat(),
        }
        base = (
            desired_state(classification, miner_themes)
            if classification is not None
            else {"stage": None, "confidence": None, "pain": []}
        )
        desired = with_override(base, agent)
        if outbox is None:
            outbox = Writeback(conversation_id=ref.conversation_id, desired=desired)
        else:
            outbox.desired = desired
            outbox.status = "pending"
            # The agent chose through the app: that stage is written even where an earlier
            # hand edit in the helpdesk had stopped cjm from writing the stage.
            outbox.stage_locked = False
            outbox.updated_at = utcnow()
        session.add(outbox)
        themes: Sequence[str] = (
            agent["themes"]
            if agent["themes"] is not None
            else (miner_themes if classification is not None else [])
        )
        label = Label(
            conversation_id=ref.conversation_id,
            origin=origin,
            stage=agent["stage"],
            themes=list(themes),
            labeller=labeller,
        )
        session.add(label)
        session.flush()
        assert label.id is not None
        return label.id
