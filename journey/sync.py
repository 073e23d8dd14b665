"""The nightly job for one source: pull → store → mine → outbox → write back → sync_run row.

Crash safety comes from ordering, not from luck: each page commits together with the checkpoint
that follows it; mining clears a conversation's `needs_mining` flag in the same transaction as its
classification and its outbox row; the outbox records each delta (and its helpdesk job) before
sending it and marks it applied only after the helpdesk confirmed it. Killing the process at any
point therefore repeats work on the next run but never skips or doubles it.

This module is the step sequence; the SQL and the rows live in `journey/store.py`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.base import (
    FetchesArchived,
    FetchesMessages,
    FetchesTickets,
    HasNotices,
    HelpdeskConnector,
)
from connectors.errors import ConnectorError, FieldGoneError, NotTheApiError
from connectors.http import reporting_waits
from connectors.records import ConversationRecord, FieldIds, MessageRecord, Page, TicketUpdate
from journey.db import session_scope
from journey.errors import CjmError
from journey.models import (
    Source,
    SyncRun,
    utcnow,
)
from journey.progress import Progress, report_count
from journey.store import (
    classification_versions,
    conversation_ids,
    conversation_texts,
    count_dirty_conversations,
    dirty_conversations,
    ensure_source,
    get_checkpoint,
    known_roles,
    last_run_started,
    mark_mined,
    outdated_classifications,
    purge_conversations,
    save_checkpoint,
    save_classifications,
    save_field_ids,
    store_page,
    stored_versions,
    unresolved_stubs,
)
from journey.writeback import refresh_outbox, write_back
from miner import (
    Prediction,
    clean_message,
    redact,
)

log = logging.getLogger("cjm.sync")


class Miner(Protocol):
    """What the pipeline needs of a miner: a version (re-mine when it changes) and predictions."""

    @property
    def version(self) -> str: ...

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...


@runtime_checkable
class SharesWork(Protocol):
    """A miner that can spread a large backlog over more processes (`runner.LazyMiner`)."""

    def share_work(self, backlog: int, progress: Progress) -> AbstractContextManager[int]: ...

    def start_predicting(self, texts: Sequence[str]) -> Callable[[], list[Prediction]]:
        """Start predicting `texts` (helpers begin their share now); call the result for the
        predictions, in order."""
        ...


MINE_BATCH = 500
ENGLISH = "en"  # the one language stages and themes are classified in (the map counts the same)


@dataclass
class SyncOptions:
    since: datetime | None = None
    writeback: bool = True
    dry_run: bool = False
    redact_pii: bool = True
    pull: bool = True  # False: `cjm model apply` (re-label what is stored, write back; no pull)
    # Real time (journey/worker.py): read just these tickets by id instead of pulling the
    # streams; mining and write-back are the same steps. No checkpoint moves and no sync_run
    # row is written (the webhook_event rows record the work).
    tickets: Sequence[str] | None = None
    # a recent field listing (a worker keeps one between batches): titles for segments, and ids
    # only where the source row has none saved
    fields: FieldIds | None = None
    progress: Progress = field(default=lambda _message: None)


@dataclass
class SourceReport:
    source: str
    conversations: int = 0
    messages: int = 0
    mined: int = 0
    stage_changed: int = 0  # mined conversations whose stage differs from their stored one
    not_english: int = 0  # mined conversations in another language: stored, not classified
    planned: int = 0
    written: int = 0
    write_failures: int = 0
    skipped_closed: int = 0
    stage_locked: int = 0
    api_calls: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.write_failures == 0


async def sync_source(
    engine: Engine,
    connector: HelpdeskConnector,
    miner: Miner,
    *,
    base_url: str,
    options: SyncOptions,
) -> SourceReport:
    """Run the whole job for one source and record it as a `sync_run` row."""
    report = SourceReport(source=connector.name)
    started = time.monotonic()
    calls_before = connector.stats.api_calls, connector.stats.rate_limited
    with session_scope(engine) as session:
        source = ensure_source(session, connector.name, connector.kind, base_url)
        assert source.id is not None
        _tell_notices_once_a_day(connector, last_run_started(session, source.id))
        run = SyncRun(source_id=source.id, dry_run=options.dry_run)
        if options.tickets is None:
            session.add(run)
    assert source.id is not None
    try:
        with reporting_waits(options.progress):  # retries and rate-limit pauses, one line each
            fields = await _fields_for(engine, source, connector, options)
            if options.writeback:
                _require_stage_field(connector, fields.ids)  # before a pull that may take an hour
            if options.tickets is not None:  # a webhook worker: just these tickets
                await _read_tickets(engine, source.id, connector, options, report, fields)
            elif options.pull:
                await _pull_all(engine, source.id, connector, options, report, fields)
                await _resolve_referenced(engine, source.id, connector, options, report, fields)
            mined = _mine(engine, source.id, miner, options.progress, options.tickets)
            report.mined, report.stage_changed, report.not_english = mined
            if report.not_english:
                report.notes.append(
                    f"{report.not_english:,} conversations not in English: not classified "
                    "(stored with their language: cjm classifies English only)"
                )
            if options.writeback:
                await _write_back(engine, source, connector, options, report, fields.ids)
    except (ConnectorError, CjmError) as exc:
        report.error = str(exc)
    finally:
        report.api_calls = connector.stats.api_calls - calls_before[0]
        report.rate_limited = connector.stats.rate_limited - calls_before[1]
        report.seconds = time.monotonic() - started
        if options.tickets is None:
            _finish_run(engine, run, report)
    return report


def _tell_notices_once_a_day(connector: HelpdeskConnector, last_run: datetime | None) -> None:
    """The connector's advice (Zendesk API tokens retiring) on the first run of a UTC day: an
    hourly cron job would otherwise mail it 24 times a day."""
    if not isinstance(connector, HasNotices):
        return
    if last_run is not None:
        last = last_run if last_run.tzinfo else last_run.replace(tzinfo=UTC)
        if last.astimezone(UTC).date() == datetime.now(UTC).date():
            return
    for notice in connector.notices:
        log.warning("%s", notice)


def _finish_run(engine: Engine, run: SyncRun, report: SourceReport) -> None:
    with session_scope(engine) as session:
        run.finished_at = utcnow()
        run.status = "ok" if report.ok else "failed"
        run.conversations, run.messages = report.conversations, report.messages
        run.mined, run.written = report.mined, report.written
        run.write_failures = report.write_failures
        run.api_calls, run.rate_limited = report.api_calls, report.rate_limited
        run.error = report.error
        session.add(run)


async def _pull_all(
    engine: Engine,
    source_id: int,
    connector: HelpdeskConnector,
    options: SyncOptions,
    report: SourceReport,
    fields: _Fields,
) -> None:
    start = options.since or datetime.fromtimestamp(0, UTC)
    clean = _cleaner(options.redact_pii)
    for stream in connector.streams:
        with session_scope(engine) as session:
            checkpoint = None if options.since else get_checkpoint(session, source_id, stream)
        pulled = 0  # this stream's records (tickets, messages, ratings), for its progress bar
        async for page in connector.pull(stream, checkpoint, start):
            roles = await _resolve_roles(engine, source_id, connector, page)
            page = await _fetch_changed_messages(engine, source_id, connector, page)  # Freshdesk
            named = await fields.slugs_for(page)
            with session_scope(engine) as session:
                _store_page(session, source_id, page, roles, clean, report, named, fields.ids)
                records = len(page.conversations) + len(page.messages)
                save_checkpoint(session, source_id, stream, page.checkpoint, records)
            pulled += records
            report_count(
                options.progress,
                f"{connector.name}: pulling {stream}",
                pulled,
                None,  # an incremental export does not say how much is left
                f"{connector.name}: {stream} → {report.conversations} tickets, "
                f"{report.messages} messages",
            )


async def _read_tickets(
    engine: Engine,
    source_id: int,
    connector: HelpdeskConnector,
    options: SyncOptions,
    report: SourceReport,
    fields: _Fields,
) -> None:
    """Real time: the tickets webhooks named, read by id as they are now and stored exactly as
    a pulled page is (no checkpoint: the streams' cursors stay where the nightly sync left
    them, so it still sees every change)."""
    if not isinstance(connector, FetchesTickets):
        raise CjmError(f"{connector.name}: this helpdesk cannot read tickets by id")
    page = await connector.fetch_tickets(list(options.tickets or ()))
    roles = await _resolve_roles(engine, source_id, connector, page)
    named = await fields.slugs_for(page)
    with session_scope(engine) as session:
        _store_page(
            session, source_id, page, roles, _cleaner(options.redact_pii), report,
            named, fields.ids,
        )  # fmt: skip


# ---- Freshdesk hook: messages fetched per conversation, only for conversations that changed ----


async def _fetch_changed_messages(
    engine: Engine, source_id: int, connector: HelpdeskConnector, page: Page
) -> Page:
    """Add the messages of the page's changed conversations (connectors without a bulk message
    export, e.g. Freshdesk: one call per ticket). Other pages pass through untouched.

    The stored rows are read before this page is upserted; the fetched messages are then stored
    in the same transaction as the page and its checkpoint, so a crash repeats the page (and
    its calls) but never loses a conversation's messages.
    """
    if not page.messages_on_demand or not isinstance(connector, FetchesMessages):
        return page
    live = [c for c in page.conversations if not c.deleted]
    if not live:
        return page
    with session_scope(engine) as session:
        stored = stored_versions(session, source_id, [c.external_id for c in live])
    wanted = [c.external_id for c in live if _messages_changed(c, stored.get(c.external_id))]
    if not wanted:
        return page
    fetched = await connector.fetch_messages(wanted, dict(page.descriptions))
    return replace(page, messages=page.messages + tuple(fetched))


def _messages_changed(
    record: ConversationRecord, stored: tuple[datetime, bool, str] | None
) -> bool:
    """New, restored, a stub, or a message after the version we stored.

    Loop prevention: cjm's own write-back (tags, custom fields) moves `updated_at` but not the
    helpdesk's reply times (`content_updated_at`, from Freshdesk `stats`), so a ticket whose only
    change is our write is not fetched again. Without reply times, `updated_at` decides.
    """
    if stored is None:
        return True
    updated_at, deleted, status = stored
    if deleted or status == "unknown":
        return True
    return (record.content_updated_at or record.updated_at) > updated_at


async def _resolve_referenced(
    engine: Engine,
    source_id: int,
    connector: HelpdeskConnector,
    options: SyncOptions,
    report: SourceReport,
    fields: _Fields,
    limit: int = 1000,
) -> None:
    """Tickets something referenced (a CSAT rating, a message) but no list returned: on
    Freshdesk these are archived tickets, readable only by id. Fetch them once; one the helpdesk
    no longer knows becomes a tombstone, so it is not asked for again every night (only once its
    first message is a day old: a ticket created during this sync is not in the lists yet)."""
    if not isinstance(connector, FetchesArchived):
        return
    with session_scope(engine) as session:
        stubs = unresolved_stubs(session, source_id, limit)
    if not stubs:
        return
    first_seen = dict(stubs)
    options.progress(f"{connector.name}: reading {len(stubs)} archived tickets by id")
    page = await connector.fetch_archived(list(first_seen))
    roles = await _resolve_roles(engine, source_id, connector, page)
    found = {c.external_id for c in page.conversations}
    named = await fields.slugs_for(page)
    with session_scope(engine) as session:
        _store_page(
            session, source_id, page, roles, _cleaner(options.redact_pii), report,
            named, fields.ids,
        )  # fmt: skip
        settled = datetime.now(UTC) - timedelta(days=1)
        gone = [e for e, seen in first_seen.items() if e not in found and seen < settled]
        if gone:
            purge_conversations(session, conversation_ids(session, source_id, gone).values())


@dataclass
class _Fields:
    """cjm's field ids for one sync, and the helpdesk's field titles that name segments.

    The ids come back from the `source` row (`cjm setup-fields` saved them). The titles
    ("Customer region" → `customer_region` in `conversation.custom_fields`) are not stored:
    an admin may rename a field any day. So a sync lists the fields at most once, and only when
    a page carries custom fields to name (a sync with nothing new makes no field call), unless
    the ids were missing and the listing already happened to find them.

    Both helpdesks put every custom field on every ticket, so a saved stage id that none of a
    page's tickets carries is gone (deleted, or re-created under a new id; Zendesk would ignore
    writes to it without an error): that listing then also looks the field up again by title,
    and what it finds is saved."""

    ids: FieldIds
    engine: Engine
    connector: HelpdeskConnector
    options: SyncOptions
    slugs: dict[str, str] | None = None  # None: not listed yet
    checked: bool = False  # the saved stage id was seen on a ticket (or looked up again)

    async def slugs_for(self, page: Page) -> dict[str, str]:
        carried = [c.custom_fields for c in page.conversations if c.custom_fields]
        # Only when writing back: then a failed listing raises instead of looking like "gone".
        if carried and self.ids.stage and self.options.writeback and not self.checked:
            self.checked = True
            if not any(self.ids.stage in fields for fields in carried):
                await self._look_up_again()
        if self.slugs is None and carried:
            self.slugs = _field_slugs(await _discover_fields(self.connector, self.options))
        return self.slugs or {}

    async def _look_up_again(self) -> None:
        listed = await _discover_fields(self.connector, self.options)
        self.slugs = _field_slugs(listed)
        if listed.stage == self.ids.stage:
            return
        log.warning(
            "%s: field %s is gone from the helpdesk; %s",
            self.connector.name,
            self.ids.stage,
            f"found it again as {listed.stage}" if listed.stage else "run `cjm setup-fields`",
        )
        self.ids = FieldIds(stage=listed.stage, confidence=listed.confidence)
        with session_scope(self.engine) as session:
            save_field_ids(session, self.connector.name, self.ids)


async def _fields_for(
    engine: Engine, source: Source, connector: HelpdeskConnector, options: SyncOptions
) -> _Fields:
    """Saved ids first; the fields are listed here only when no id was saved (a database that
    predates `setup-fields` saving them, or an id the helpdesk reported gone), and what that
    listing finds is saved, so the next sync reads it back. A webhook worker passes its own
    recent listing in `options.fields` (titles; ids only where none is saved)."""
    saved = field_ids_for(source)
    listed = options.fields
    if not saved.stage and listed is None:
        listed = await _discover_fields(connector, options)
        if listed.stage:
            with session_scope(engine) as session:
                save_field_ids(session, connector.name, listed)
    ids = saved
    if not saved.stage and listed is not None:
        ids = FieldIds(stage=listed.stage, confidence=listed.confidence)
    return _Fields(
        ids=ids,
        engine=engine,
        connector=connector,
        options=options,
        slugs=_field_slugs(listed) if listed is not None else None,
    )


async def _discover_fields(connector: HelpdeskConnector, options: SyncOptions) -> FieldIds:
    """cjm's field ids (for write-back) and every field's title (for segments), in one call.

    Without write-back a failure here (e.g. a non-admin key on Freshdesk) only costs the
    field titles, so the sync goes on."""
    try:
        return await connector.discover_fields()
    except ConnectorError as exc:
        if options.writeback or isinstance(exc, NotTheApiError):
            raise  # a server that is not the helpdesk's API: the pull would fail the same way
        log.warning("%s: cannot list ticket fields; segments use field ids", connector.name)
        return FieldIds()


def _field_slugs(fields: FieldIds) -> dict[str, str]:
    """Field key → a name an analyst can type ("Customer region" → customer_region)."""
    slugs: dict[str, str] = {}
    for key, title in fields.names:
        slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
        if slug and slug != key:
            slugs[key] = slug
    return slugs


async def _resolve_roles(
    engine: Engine, source_id: int, connector: HelpdeskConnector, page: Page
) -> dict[str, str]:
    """Roles of this page's authors: sideloaded, cached, or looked up 100 at a time."""
    roles: dict[str, str] = {p.external_id: p.role for p in page.people}
    authors = {m.author_id for m in page.messages if m.author_id and m.author_role is None}
    unknown = authors - roles.keys()
    if unknown:
        with session_scope(engine) as session:
            roles.update(known_roles(session, source_id, unknown))
        missing = unknown - roles.keys()
        if missing:
            looked_up = await connector.lookup_people(missing)
            roles.update({p.external_id: p.role for p in looked_up})
            for author in missing - roles.keys():
                roles[author] = "end_user"  # deleted users come back from nowhere: customers
    return roles


def _store_page(
    session: Session,
    source_id: int,
    page: Page,
    roles: dict[str, str],
    clean: _Cleaner,
    report: SourceReport,
    named: dict[str, str],
    fields: FieldIds,
) -> None:
    redacting = clean.redacts
    conversations, messages = store_page(
        session,
        source_id,
        page,
        roles,
        clean_message=clean,
        clean_subject=lambda subject: redact(storable(subject)) if redacting else storable(subject),
        redacted=redacting,
        named=named,
        cjm_fields={f for f in (fields.stage, fields.confidence) if f},
    )
    report.conversations += conversations
    report.messages += messages


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def storable(text: str) -> str:
    """Text every database accepts: PostgreSQL refuses NUL bytes in text columns, and other C0
    controls are never meaningful in customer text (tabs and newlines are kept)."""
    return _CONTROL.sub("", text)


@dataclass(frozen=True)
class _Cleaner:
    """A message's body as it is stored: cleaned, and redacted unless the config turned that off
    (`redacts` is what `message.redacted` records, so the flag tells the truth)."""

    redacts: bool

    def __call__(self, message: MessageRecord) -> str:
        text = clean_message(storable(message.body), html=message.is_html)
        return redact(text) if self.redacts else text


def _cleaner(redact_pii: bool) -> _Cleaner:
    return _Cleaner(redacts=redact_pii)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _mine(
    engine: Engine,
    source_id: int,
    miner: Miner,
    progress: Progress,
    tickets: Sequence[str] | None = None,
) -> tuple[int, int, int]:
    """Classify conversations whose customer text or the model changed since last time (a
    conversation classified by another model version is mined again; the outbox then writes
    only tickets whose desired fields or tags changed, and agents' stages stay locked).
    `tickets` (a real-time batch): only those tickets — re-labelling a whole history after a
    model change is the nightly sync's or `cjm model apply`'s job, not a webhook's, which must
    answer in seconds and not hold the source's lock for minutes.

    Returns (mined, stage changed, not in English): the last are stored with their language but
    get no stage or themes, and the summary says how many rather than dropping them silently."""
    with session_scope(engine) as session:
        outdated = 0 if tickets else outdated_classifications(session, source_id, miner.version)
        total = count_dirty_conversations(session, source_id, miner.version, tickets)
    if outdated:
        progress(
            f"mining: the model changed ({miner.version}); re-labelling {outdated} "
            "stored conversations"
        )
    sharing = miner.share_work(total, progress) if isinstance(miner, SharesWork) else None
    with sharing or nullcontext(1):
        return _mine_batches(engine, source_id, miner, progress, total, tickets)


@dataclass
class _Batch:
    """One batch to mine: read in its own short transaction, its predictions already started
    (a helper process works on its share while the previous batch is stored)."""

    conversations: list[int]
    todo: list[tuple[int, str]]  # (conversation id, text) whose text or model changed
    previous: dict[int, tuple[str, str, str | None]]
    predictions: Callable[[], list[Prediction]]


def _next_batch(
    engine: Engine, source_id: int, miner: Miner, after_id: int, tickets: Sequence[str] | None
) -> _Batch | None:
    with session_scope(engine) as session:
        conversations = dirty_conversations(
            session, source_id, after_id, MINE_BATCH, miner.version, tickets
        )
        if not conversations:
            return None
        texts = conversation_texts(session, conversations)
        previous = classification_versions(session, conversations)
    todo = [
        (cid, text)
        for cid, text in texts.items()
        if text and previous.get(cid, (None, None, None))[:2] != (text_hash(text), miner.version)
    ]
    return _Batch(conversations, todo, previous, _start(miner, [text for _, text in todo]))


def _start(miner: Miner, texts: list[str]) -> Callable[[], list[Prediction]]:
    if not texts:
        return list
    if isinstance(miner, SharesWork):
        return miner.start_predicting(texts)
    return lambda: miner.predict(texts)


def _mine_batches(
    engine: Engine,
    source_id: int,
    miner: Miner,
    progress: Progress,
    total: int,
    tickets: Sequence[str] | None,
) -> tuple[int, int, int]:
    """Batches in id order, each stored in one transaction with its outbox rows. The next
    batch is read (and its helper share started) before this one is stored, so a helper
    process predicts while this process writes."""
    mined = changed = walked = foreign = 0
    batch = _next_batch(engine, source_id, miner, 0, tickets)
    while batch is not None:
        todo, predictions = batch.todo, batch.predictions()
        following = _next_batch(engine, source_id, miner, batch.conversations[-1], tickets)
        with session_scope(engine) as session:
            changed += sum(
                1
                for (cid, _), p in zip(todo, predictions, strict=True)
                if cid in batch.previous and batch.previous[cid][2] != p.stage
            )
            foreign += sum(1 for p in predictions if p.language not in (None, ENGLISH))
            save_classifications(
                session,
                miner.version,
                [
                    (cid, text_hash(text), prediction)
                    for (cid, text), prediction in zip(todo, predictions, strict=True)
                ],
            )
            mark_mined(session, batch.conversations)
            if todo:
                session.flush()
                # The outbox rows commit with the classifications: when they were two
                # transactions, a crash between them lost those tickets' write-back for good
                # (tests/reliability/test_kill.py kills the process at this line).
                progress(f"mining: storing {len(todo)} classifications and their outbox rows")
                refresh_outbox(session, [cid for cid, _ in todo])
        mined += len(todo)
        walked += len(batch.conversations)
        report_count(progress, "mining", walked, total, f"mined {mined} conversations")
        batch = following
    return mined, changed, foreign


def _require_stage_field(connector: HelpdeskConnector, fields: FieldIds) -> None:
    """Write-back needs cjm's field: say so before the pull, not after it (a first Freshdesk
    pull can take many minutes)."""
    if not fields.stage:
        raise CjmError(
            f"the Journey stage field does not exist in {connector.name}: "
            f"run `cjm setup-fields --source {connector.name}` once (needs an admin), "
            "or sync with --no-writeback"
        )


async def _write_back(
    engine: Engine,
    source: Source,
    connector: HelpdeskConnector,
    options: SyncOptions,
    report: SourceReport,
    fields: FieldIds,
) -> None:
    _require_stage_field(connector, fields)
    assert source.id is not None
    try:
        result = await write_back(
            engine, source.id, connector, fields, dry_run=options.dry_run, progress=options.progress
        )
    except FieldGoneError:
        # the saved id is stale: forget it, so the next sync looks the field up by its title
        with session_scope(engine) as session:
            save_field_ids(session, connector.name, FieldIds())
        raise
    report.planned = result.planned
    report.written = result.written
    report.write_failures = result.failed
    report.skipped_closed = result.skipped_closed
    report.stage_locked = result.stage_locked
    report.notes.extend(result.errors)
    if options.dry_run:
        report.notes.extend(_describe(u) for u in result.preview)


def _describe(update: TicketUpdate) -> str:
    parts = [f"ticket {update.external_id}:"]
    parts += [f"set field {k}={v}" for k, v in update.set_fields]
    parts += [f"+{t}" for t in sorted(update.add_tags)]
    parts += [f"-{t}" for t in sorted(update.remove_tags)]
    return " ".join(parts)


def field_ids_for(source: Source) -> FieldIds:
    return FieldIds(stage=source.stage_field_id, confidence=source.confidence_field_id)
