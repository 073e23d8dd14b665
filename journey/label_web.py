"""The labelling page of `cjm serve` (`/label`): the web form of `cjm label`.

Same loop, same parts: candidates from :func:`journey.labelling.database_candidates`, picked by
:func:`journey.labelling.suggest` (uncertainty with diversity, never a labelled conversation),
answers stored by :func:`journey.labelling.store_label` in the same `label` table (origin
``ORIGIN``), one transaction per keystroke. The page asks for a batch, shows one conversation
at a time and posts each decision; undo deletes the label it just stored (only a label this
page made, so a page can never delete an agent's correction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from journey.db import session_scope
from journey.errors import ConfigError
from journey.labelling import (
    THEME_KEYS,
    database_candidates,
    delete_label,
    store_label,
    suggest,
)
from journey.modeling import database_labels
from journey.models import Conversation, Label
from miner import ConversationMiner, Taxonomy

ORIGIN = "label page"
MAX_BATCH = 50
MAX_SHOWN_CHARS = 1500


def keys(taxonomy: Taxonomy) -> dict[str, Any]:
    """The keyboard map, as in the terminal: digits pick a stage, letters toggle themes."""
    stages = list(taxonomy.stage_names)[:9]
    themes = list(taxonomy.theme_names)[: len(THEME_KEYS)]
    return {
        "stages": [
            {"key": str(i), "name": name, "label": taxonomy.stage(name).label}
            for i, name in enumerate(stages, start=1)
        ],
        "themes": [
            {"key": key, "name": name, "label": taxonomy.theme(name).label}
            for key, name in zip(THEME_KEYS, themes, strict=False)
        ],
    }


def next_batch(
    engine: Engine,
    miner: ConversationMiner,
    *,
    n: int,
    source: str | None = None,
    exclude: Sequence[int] = (),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The next `n` conversations to label, best first (`exclude`: the ones the page has shown)."""
    if not 1 <= n <= MAX_BATCH:
        raise ConfigError(f"n must be between 1 and {MAX_BATCH}")
    candidates = database_candidates(engine, source=source, exclude=list(exclude))
    labelled = database_labels(engine, miner.taxonomy)
    picks = suggest(
        miner,
        candidates,
        n,
        exclude_ids=labelled.ids,
        exclude_texts=labelled.texts,
        seed=seed + len(exclude),
    )
    out = []
    for pick in picks:
        p, text = pick.prediction, pick.candidate.text
        out.append(
            {
                "conversation_id": pick.candidate.conversation_id,
                "id": pick.candidate.id,
                "text": text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + " …",
                "stage": p.stage,
                "stage_confidence": round(float(p.stage_confidence), 4),
                "themes": list(p.themes),
                "evidence": list(p.evidence[:3]),
                "reason": pick.reason,
            }
        )
    return out


def parse_decision(body: Any, taxonomy: Taxonomy) -> tuple[int, str | None, list[str], str]:
    """`{"conversation_id": 12, "stage": "delivery", "themes": [...], "labeller": "ana"}`."""
    if not isinstance(body, dict):
        raise ConfigError('the body must be a JSON object such as {"conversation_id": 1, ...}')
    conversation_id = body.get("conversation_id")
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise ConfigError('"conversation_id" must be an integer')
    stage = body.get("stage")
    if not isinstance(stage, str) or stage not in taxonomy.stage_names:
        raise ConfigError(f"unknown stage {stage!r}: use one of {', '.join(taxonomy.stage_names)}")
    themes = body.get("themes", [])
    if not isinstance(themes, list) or not all(isinstance(t, str) for t in themes):
        raise ConfigError('"themes" must be a list of theme names')
    bad = [t for t in themes if t not in taxonomy.theme_names]
    if bad:
        raise ConfigError(f"unknown theme(s) {', '.join(map(repr, bad))}")
    labeller = body.get("labeller") or "label page"
    if not isinstance(labeller, str):
        raise ConfigError('"labeller" must be a string')
    return conversation_id, stage, [t for t in taxonomy.theme_names if t in themes], labeller


def record(
    engine: Engine, conversation_id: int, stage: str | None, themes: list[str], labeller: str
) -> int:
    with session_scope(engine) as session:
        if session.get(Conversation, conversation_id) is None:
            raise LookupError(f"conversation {conversation_id} does not exist")
    return store_label(engine, conversation_id, stage, themes, labeller[:200], origin=ORIGIN)


def undo(engine: Engine, label_id: int) -> None:
    """Delete a label this page stored; LookupError for any other."""
    with session_scope(engine) as session:
        origin = session.execute(select(Label.origin).where(Label.id == label_id)).scalar()
    if origin != ORIGIN:
        raise LookupError(f"label {label_id} was not made on this page")
    delete_label(engine, label_id)
