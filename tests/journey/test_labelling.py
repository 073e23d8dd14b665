"""The labelling loop on SQLite and PostgreSQL: `suggest` never offers a labelled or repeated
conversation, and `cjm label` stores exactly the decisions given (accept, change, themes, skip,
undo, quit, Ctrl-C, resume)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.engine import Engine

from journey.db import session_scope
from journey.labelling import (
    ORIGIN,
    THEME_KEYS,
    Candidate,
    database_candidates,
    label_loop,
    suggest,
    suggest_file,
)
from journey.models import Conversation, Label, Message
from journey.store import ensure_source
from miner import ConversationMiner, Taxonomy, default_taxonomy

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "miner" / "corpus.jsonl"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONTRACT_KEYS = {"id", "text", "stage", "stage_confidence", "themes", "reason"}


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return default_taxonomy()


@pytest.fixture(scope="module")
def miner(taxonomy: Taxonomy) -> ConversationMiner:
    return ConversationMiner(taxonomy, embeddings=None)


def add_conversations(engine: Engine, texts: list[str], source: str = "acme") -> dict[str, int]:
    """One ticket per text, with the text as the customer's only message; `source:id` → row id."""
    ids: dict[str, int] = {}
    with session_scope(engine) as session:
        src = ensure_source(session, source, "zendesk", "http://sim")
        assert src.id is not None
        for k, text in enumerate(texts):
            when = T0 + timedelta(minutes=k)
            conversation = Conversation(
                source_id=src.id, external_id=str(100 + k), created_at=when, updated_at=when
            )
            session.add(conversation)
            session.flush()
            assert conversation.id is not None
            session.add(
                Message(
                    source_id=src.id,
                    external_id=f"m{100 + k}",
                    conversation_id=conversation.id,
                    author_role="end_user",
                    created_at=when,
                    text=text,
                )
            )
            ids[f"{source}:{100 + k}"] = conversation.id
    return ids


def stored_labels(
    engine: Engine,
) -> list[tuple[int | None, str | None, list[str], str, str | None]]:
    with session_scope(engine) as session:
        rows = session.execute(select(Label).order_by(Label.id)).scalars().all()
        return [(r.conversation_id, r.stage, r.themes, r.origin, r.labeller) for r in rows]


# ---- suggest --------------------------------------------------------------------------------


def test_suggest_skips_labelled_ids_labelled_texts_and_repeats(miner: ConversationMiner) -> None:
    rows = corpus()
    candidates = [Candidate(id=r["id"], text=r["text"]) for r in rows]
    candidates += [Candidate(id=f"copy-{r['id']}", text=r["text"].upper()) for r in rows[:10]]
    labelled_ids = [r["id"] for r in rows[:20]]
    labelled_texts = [rows[30]["text"]]
    picks = suggest(
        miner, candidates, 40, exclude_ids=labelled_ids, exclude_texts=labelled_texts, seed=3
    )
    ids = [p.candidate.id for p in picks]
    texts = [" ".join(p.candidate.text.lower().split()) for p in picks]
    assert len(picks) == 40
    assert len(set(ids)) == len(ids) and len(set(texts)) == len(texts)
    assert not set(ids) & set(labelled_ids)
    assert rows[30]["text"].lower() not in texts
    assert not any(i.startswith("copy-") and i.removeprefix("copy-") in labelled_ids for i in ids)
    again = suggest(
        miner, candidates, 40, exclude_ids=labelled_ids, exclude_texts=labelled_texts, seed=3
    )
    assert [p.candidate.id for p in again] == ids  # deterministic


def test_suggest_file_writes_the_contract_and_never_a_labelled_line(
    miner: ConversationMiner, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    rows = corpus()
    source = tmp_path / "tickets.jsonl"
    source.write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows), "utf-8"
    )
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows[:25]), "utf-8")
    output = tmp_path / "out" / "suggest.jsonl"
    written = suggest_file(
        miner, taxonomy, n=100, output=output, input_path=source, labels_path=labels
    )
    lines = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert written == len(lines) == len(rows) - 25  # asked for more than are left
    assert all(set(line) == CONTRACT_KEYS for line in lines)
    assert {line["id"] for line in lines} == {r["id"] for r in rows[25:]}
    for line in lines:
        assert line["stage"] is None or line["stage"] in taxonomy.stage_names
        assert 0.0 <= line["stage_confidence"] <= 1.0
        assert set(line["themes"]) <= set(taxonomy.theme_names)
        assert line["reason"].startswith("uncertain between ")


def test_suggest_from_the_database_never_offers_a_labelled_conversation(
    engine: Engine, miner: ConversationMiner, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    rows = corpus()[:30]
    ids = add_conversations(engine, [r["text"] for r in rows])
    add_conversations(engine, ["my parcel never came"], source="other")
    labelled = list(ids.values())[::3]
    with session_scope(engine) as session:
        session.add_all(Label(conversation_id=c, origin="agent", stage="support") for c in labelled)
    output = tmp_path / "s.jsonl"
    suggest_file(miner, taxonomy, n=50, output=output, engine=engine, source="acme")
    lines = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    offered = {ids[line["id"]] for line in lines}
    assert offered == set(ids.values()) - set(labelled)
    with pytest.raises(Exception, match="no such source"):
        database_candidates(engine, source="nope")


# ---- the label loop, driven by an injected key reader ---------------------------------------


class Keys:
    """Feeds keys; records which conversation and prediction was on screen at each key."""

    def __init__(self, keys: list[str], console: io.StringIO) -> None:
        self.keys = iter(keys)
        self.console = console
        self.screens: list[str] = []

    def __call__(self) -> str:
        self.screens.append(self.console.getvalue())
        self.console.seek(0)
        self.console.truncate()
        key = next(self.keys, None)
        if key is None or key == "^C":
            raise KeyboardInterrupt
        return key


def shown(screen: str) -> tuple[str, str | None]:
    """(ticket id, predicted stage) of a rendered screen."""
    ticket = re.search(r"#\d+ · (\S+) · ", screen)
    predicted = re.search(r"predicted (\w+) \(", screen)
    assert ticket is not None, screen
    return ticket.group(1), predicted.group(1) if predicted else None


def run_loop(
    engine: Engine, miner: ConversationMiner, keys: list[str], **options: Any
) -> tuple[Any, Keys]:
    buffer = io.StringIO()
    reader = Keys(keys, buffer)
    console = Console(file=buffer, width=200, color_system=None)
    summary = label_loop(engine, miner, read_key=reader, console=console, labeller="ana", **options)
    return summary, reader


@pytest.fixture
def tickets(engine: Engine) -> Iterator[dict[str, int]]:
    rows = [r for r in corpus() if r["stage"] != "support"][:24]
    yield add_conversations(engine, [r["text"] for r in rows])


def test_loop_stores_exactly_the_decisions_given(
    engine: Engine, miner: ConversationMiner, tickets: dict[str, int], taxonomy: Taxonomy
) -> None:
    stages, theme_b = taxonomy.stage_names, taxonomy.theme_names[1]
    a, b = THEME_KEYS[0], THEME_KEYS[1]
    keys = ["2", "s", "5", "u", "u", a, b, a, "6", "3", "q"]
    summary, reader = run_loop(engine, miner, keys, batch=10)
    on_screen = [shown(s)[0] for s in reader.screens]
    first, second, third, fourth = on_screen[:4]
    # "2" labels the first, "s" skips the second, "5" labels the third; undo twice (the third's
    # label goes, then the skip); on the second, theme a on and off, b toggled, "6"; then "3".
    assert on_screen[3:] == [fourth, third, second, second, second, second, third, fourth]
    assert len({first, second, third, fourth}) == 4

    def predicted(ticket: str) -> list[str]:
        return list(miner.predict([_text(engine, tickets[ticket])])[0].themes)

    second_themes = sorted(set(predicted(second)) ^ {theme_b}, key=taxonomy.theme_names.index)
    assert stored_labels(engine) == [
        (tickets[first], stages[1], predicted(first), ORIGIN, "ana"),
        (tickets[second], stages[5], second_themes, ORIGIN, "ana"),
        (tickets[third], stages[2], predicted(third), ORIGIN, "ana"),
    ]
    assert (summary.stored, summary.skipped, summary.undone, summary.interrupted) == (
        3,
        0,
        2,
        False,
    )


def _text(engine: Engine, conversation_id: int) -> str:
    from journey.store import conversation_texts

    with session_scope(engine) as session:
        return conversation_texts(session, [conversation_id])[conversation_id]


def test_accept_stores_the_prediction_and_ctrl_c_keeps_what_was_answered(
    engine: Engine, miner: ConversationMiner, tickets: dict[str, int]
) -> None:
    summary, reader = run_loop(engine, miner, ["1", "^C"], batch=5)
    assert summary.interrupted and summary.stored == 1
    first_id = shown(reader.screens[0])[0]
    assert [(c, s) for c, s, *_ in stored_labels(engine)] == [(tickets[first_id], "awareness")]

    # resume: the labelled conversation is never shown again; accept whatever has a prediction
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    accepted: list[tuple[str, str]] = []

    def reader2() -> str:
        screen = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        ticket, predicted = shown(screen)
        assert ticket != first_id
        if len(accepted) == 3:
            return "q"
        if predicted is None:
            accepted.append((ticket, "delivery"))
            return "5"
        accepted.append((ticket, predicted))
        return "\r"

    summary2 = label_loop(engine, miner, read_key=reader2, console=console, labeller="bo", batch=2)
    assert summary2.stored == 3 and not summary2.interrupted
    rows = stored_labels(engine)
    assert [(c, s) for c, s, *_ in rows] == [(tickets[first_id], "awareness")] + [
        (tickets[t], s) for t, s in accepted
    ]
    assert [who for *_, who in rows] == ["ana", "bo", "bo", "bo"]


def test_every_k_labels_retrains_in_the_background_and_shows_the_curve(
    engine: Engine, miner: ConversationMiner, tickets: dict[str, int], taxonomy: Taxonomy
) -> None:
    from journey.labelling import Retrainer

    retrainer = Retrainer(taxonomy, embeddings=None, folds=3)
    keys = ["1", "2", "3", "4", "5", "6"]

    buffer = io.StringIO()
    reader = Keys(keys, buffer)
    summary = label_loop(
        engine,
        miner,
        read_key=reader,
        console=Console(file=buffer, width=200, color_system=None),
        labeller="ana",
        batch=3,
        retrain_every=6,
        retrainer=retrainer,
    )
    retrainer.wait(120)
    assert summary.stored == 6 and summary.interrupted  # the keys ran out: Ctrl-C
    assert [n for n, _ in retrainer.curve] == [6]
    assert 0.0 <= retrainer.curve[0][1] <= 1.0
    assert retrainer.take_model() is not None
