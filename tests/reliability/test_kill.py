"""kill -9 at many points of a real `cjm sync`, then run it again: the database and the helpdesk
must end exactly as after one uninterrupted run — nothing lost, nothing duplicated, no write
applied twice in a way an agent could see, and none of cjm's own values taken for an agent's
edit (no stage lock, no agent training label). Update jobs take seconds, as Zendesk's do, so
kills during write-back land while jobs are still running.

The sync runs as a subprocess (so it can really be killed); the simulator runs in this process
on a localhost port, so its state survives the kill and can be inspected afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from journey.db import make_engine, session_scope
from journey.models import Classification, Conversation, Label, Message, Writeback
from journey.store import themes_of
from simulator import ZendeskSimulator, create_zendesk_app, serve_in_thread

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TICKETS = 1200
SEED = 21
JOB_SECONDS = 2.0  # each update_many job runs this long after it was accepted
CONFIG = """
[database]
url = "sqlite:///cjm.db"

[[sources]]
name = "acme"
kind = "zendesk"
base_url = "{url}"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
"""


@dataclass
class Run:
    workdir: Path
    sim: ZendeskSimulator
    url: str

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-c",
            "from cli import main; main()",
            "--config",
            str(self.workdir / "cjm.toml"),
            *args,
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "CJM_ZENDESK_TOKEN": "sim-token", "COLUMNS": "200"}

    def cjm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=self.workdir,
        )

    def sync_killed_at(self, marker: str, occurrence: int) -> bool:
        """Start a sync; SIGKILL it when the `occurrence`-th progress line containing `marker`
        appears. Returns False when the sync finished before reaching that point."""
        with subprocess.Popen(
            self.command("sync"),
            env=self.env(),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=self.workdir,
        ) as process:
            assert process.stderr is not None
            seen = 0
            for line in process.stderr:
                if marker in line:
                    seen += 1
                    if seen == occurrence:
                        process.send_signal(signal.SIGKILL)
                        process.wait(60)
                        return True
            process.wait(60)
        return False


def start(tmp_path: Path, name: str) -> Run:
    sim = ZendeskSimulator.generate(tickets=TICKETS, seed=SEED, now=NOW, job_seconds=JOB_SECONDS)
    server = serve_in_thread(create_zendesk_app(sim))
    workdir = tmp_path / name
    workdir.mkdir()
    (workdir / "cjm.toml").write_text(CONFIG.format(url=server.url), encoding="utf-8")
    run = Run(workdir, sim, server.url)
    run.stop = server.stop  # type: ignore[attr-defined]
    result = run.cjm("setup-fields")
    assert result.returncode == 0, result.stderr
    return run


def database_snapshot(run: Run) -> dict[str, Any]:
    engine = make_engine(f"sqlite:///{run.workdir / 'cjm.db'}")
    with session_scope(engine) as session:
        conversations = sorted(
            (c.external_id, c.status, c.deleted)
            for c in session.execute(select(Conversation)).scalars()
        )
        messages = sorted(
            (m.external_id, m.text, m.author_role, m.public)
            for m in session.execute(select(Message)).scalars()
        )
        by_id = {c.id: c.external_id for c in session.execute(select(Conversation)).scalars()}
        themes = themes_of(session, by_id)
        classifications = sorted(
            (by_id[c.conversation_id], c.stage, tuple(themes[c.conversation_id]))
            for c in session.execute(select(Classification)).scalars()
        )
        outbox = sorted(
            (
                by_id[w.conversation_id],
                w.status,
                str(sorted(w.applied.get("pain", []))),
                str(w.applied.get("stage")),
                str(w.sent),
                str(w.job_id),
            )
            for w in session.execute(select(Writeback)).scalars()
        )
        stage_locks = sorted(
            by_id[w.conversation_id]
            for w in session.execute(select(Writeback).where(Writeback.stage_locked)).scalars()
        )
        labels = sorted(
            (by_id.get(label.conversation_id or -1), label.origin, str(label.stage))
            for label in session.execute(select(Label)).scalars()
        )
    engine.dispose()
    return {
        "conversations": conversations,
        "messages": messages,
        "classifications": classifications,
        "outbox": outbox,
        "stage_locks": stage_locks,
        "labels": labels,
    }


def helpdesk_snapshot(run: Run) -> tuple[dict[int, Any], Counter[int]]:
    """Every ticket's tags and fields, and how many audits cjm's integration user made on it."""
    tickets = {
        tid: (
            run.sim.ticket(tid).status,
            tuple(sorted(run.sim.ticket(tid).tags)),
            tuple(sorted((k, str(v)) for k, v in run.sim.ticket(tid).fields.items())),
        )
        for tid in run.sim.ticket_ids()
    }
    audits: Counter[int] = Counter()
    start_time = 0
    with httpx.Client(base_url=run.url, auth=("lead@acme.example/token", "sim-token")) as client:
        while True:
            body = client.get(
                "/api/v2/incremental/ticket_events.json",
                params={"start_time": start_time, "per_page": 1000},
            ).json()
            for event in body["ticket_events"]:
                if event["updater_id"] == run.sim.integration_user_id:
                    audits[(event["ticket_id"], event["id"])] += 1
            if body["end_of_stream"]:
                break
            start_time = body["end_time"]
    per_ticket: Counter[int] = Counter(ticket for ticket, _ in audits)
    return tickets, per_ticket


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Any]:
    run = start(tmp_path_factory.mktemp("kill"), "reference")
    try:
        result = run.cjm("sync")
        assert result.returncode == 0, result.stderr
        return database_snapshot(run), helpdesk_snapshot(run)
    finally:
        run.stop()  # type: ignore[attr-defined]


KILL_POINTS = [
    ("tickets →", 1),  # after the first page of tickets is committed
    ("ticket_events →", 1),  # while comments are being pulled
    ("ticket_events →", 3),
    ("mined", 1),  # in the middle of mining
    # Classifications stored, their outbox rows not yet: two commits once, one transaction now.
    ("mining: storing", 1),
    ("mining: storing", 2),
    ("write-back:", 1),  # deltas recorded, about to be sent
    ("write-back: job", 1),  # the first update job accepted and still running
    ("write-back: job", 3),
]
TABLES = ("conversations", "messages", "classifications", "outbox", "stage_locks", "labels")


@pytest.mark.parametrize(("marker", "occurrence"), KILL_POINTS)
def test_kill_and_rerun_ends_like_an_uninterrupted_run(
    tmp_path: Path, reference: tuple[dict[str, Any], Any], marker: str, occurrence: int
) -> None:
    run = start(tmp_path, "killed")
    try:
        assert run.sync_killed_at(marker, occurrence), f"the sync never reached {marker!r}"
        result = run.cjm("sync")
        assert result.returncode == 0, result.stderr
        database, (tickets, cjm_audits) = database_snapshot(run), helpdesk_snapshot(run)
    finally:
        run.stop()  # type: ignore[attr-defined]
    expected_database, (expected_tickets, expected_audits) = reference
    for table in TABLES:
        assert database[table] == expected_database[table], table
    assert tickets == expected_tickets
    # No ticket got cjm's update twice: at most one audit by the integration user per ticket.
    assert max(cjm_audits.values(), default=0) <= 1
    assert sum(cjm_audits.values()) == sum(expected_audits.values())


def test_reference_run_locks_nothing_and_learns_no_agent_label(
    reference: tuple[dict[str, Any], Any],
) -> None:
    """No agent touched the simulator's tickets: every stage on them is cjm's own."""
    database, (_, audits) = reference
    assert database["stage_locks"] == []
    assert database["labels"] == []
    assert sum(audits.values()) > 100  # the run did write back


def test_a_lost_database_does_not_turn_cjms_values_into_agent_labels(
    tmp_path: Path, reference: tuple[dict[str, Any], Any]
) -> None:
    """The database is lost (or restored from an old backup) after cjm wrote back: the helpdesk's
    audits, not the empty local table, say who set each stage. No lock, no label, no write."""
    run = start(tmp_path, "lost")
    try:
        assert run.cjm("sync").returncode == 0
        (run.workdir / "cjm.db").unlink()
        result = run.cjm("sync")
        assert result.returncode == 0, result.stderr
        database, (tickets, cjm_audits) = database_snapshot(run), helpdesk_snapshot(run)
    finally:
        run.stop()  # type: ignore[attr-defined]
    expected_database, (expected_tickets, expected_audits) = reference
    assert database["stage_locks"] == []
    assert database["labels"] == []
    assert tickets == expected_tickets
    assert cjm_audits == expected_audits  # nothing written a second time


# ---- history follows the model (issue 14): a kill while re-labelling after a model change ------

CHANGED_MODEL = "\n[miner]\nabstain_below = 0.6\n"  # another model version: history is re-mined


def change_model(run: Run) -> None:
    config = run.workdir / "cjm.toml"
    config.write_text(config.read_text(encoding="utf-8") + CHANGED_MODEL, encoding="utf-8")


@pytest.fixture(scope="module")
def relabelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Any]:
    """One uninterrupted sync, a model change, one uninterrupted re-labelling sync."""
    run = start(tmp_path_factory.mktemp("relabel"), "reference")
    try:
        assert run.cjm("sync").returncode == 0
        change_model(run)
        result = run.cjm("sync")
        assert result.returncode == 0, result.stderr
        assert "re-labelling" in result.stderr
        return database_snapshot(run), helpdesk_snapshot(run)
    finally:
        run.stop()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("marker", "occurrence"),
    [("mining: storing", 2), ("write-back: job", 1)],
)
def test_kill_while_relabelling_history_then_rerun_ends_like_an_uninterrupted_run(
    tmp_path: Path, relabelled: tuple[dict[str, Any], Any], marker: str, occurrence: int
) -> None:
    """A new model re-labels stored conversations and writes only changed tickets; a kill -9 in
    the middle must not leave old labels behind, write a ticket twice or invent agent edits."""
    run = start(tmp_path, "killed")
    try:
        assert run.cjm("sync").returncode == 0
        change_model(run)
        assert run.sync_killed_at(marker, occurrence), f"the sync never reached {marker!r}"
        result = run.cjm("sync")
        assert result.returncode == 0, result.stderr
        database, (tickets, cjm_audits) = database_snapshot(run), helpdesk_snapshot(run)
    finally:
        run.stop()  # type: ignore[attr-defined]
    expected_database, (expected_tickets, expected_audits) = relabelled
    for table in TABLES:
        assert database[table] == expected_database[table], table
    assert tickets == expected_tickets
    assert max(cjm_audits.values(), default=0) <= 2  # the first run's write and the new model's
    assert sum(cjm_audits.values()) == sum(expected_audits.values())
