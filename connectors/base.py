"""The protocol every helpdesk connector satisfies; `journey/` depends on this, not on a vendor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from connectors.http import CallStats
from connectors.records import (
    FieldIds,
    MessageRecord,
    Page,
    PersonRecord,
    TicketUpdate,
    UpdateResult,
)


class HelpdeskConnector(Protocol):
    """Pull pages of records per stream, resolve authors, and write deltas back."""

    kind: str
    name: str

    @property
    def streams(self) -> tuple[str, ...]:
        """Stream names in the order a sync must pull them."""
        ...

    @property
    def stats(self) -> CallStats: ...

    @property
    def self_user_id(self) -> str | None:
        """The integration user's id once known: updates by it are cjm's own."""
        ...

    def pull(self, stream: str, checkpoint: str | None, start: datetime) -> AsyncIterator[Page]:
        """Pages after `checkpoint` (or from `start` when there is none), oldest first."""
        ...

    async def lookup_people(self, ids: Iterable[str]) -> list[PersonRecord]: ...

    async def discover_fields(self) -> FieldIds: ...

    async def setup_fields(
        self, stages: Sequence[tuple[str, str]], confidence_levels: Sequence[tuple[str, str]]
    ) -> FieldIds:
        """Create or complete cjm's fields; `stages` and levels are (option value, label)."""
        ...

    async def apply_updates(self, updates: Sequence[TicketUpdate]) -> list[UpdateResult]: ...

    async def aclose(self) -> None: ...


# ---- optional capabilities (additive; Freshdesk) -----------------------------------------------


@runtime_checkable
class HasNotices(Protocol):
    """A connector with advice about the account's set-up (e.g. Zendesk API tokens retire on
    2027-04-30). The connector only says it; the pipeline decides when it is shown."""

    @property
    def notices(self) -> tuple[str, ...]: ...


@runtime_checkable
class FetchesMessages(Protocol):
    """A helpdesk without a bulk message export (Freshdesk: one conversations call per ticket).

    Pages flagged `messages_on_demand` carry conversations only; the pipeline decides which of
    them changed (it alone sees the database) and asks for just those. The connector runs the
    calls concurrently under the account's limiter and returns every message of each conversation
    (the ticket description included, as its first customer message), authors' roles resolved.
    A conversation that vanished meanwhile (404) is left out, not an error.
    """

    async def fetch_messages(
        self,
        conversation_ids: Sequence[str],
        descriptions: Mapping[str, MessageRecord | None] | None = None,
    ) -> list[MessageRecord]:
        """`descriptions`: first messages the page already carried (`Page.descriptions`); a
        ticket missing from it is read by id first."""
        ...


@runtime_checkable
class FetchesArchived(Protocol):
    """A helpdesk whose old tickets leave every list (Freshdesk's archive) and can only be read
    by id. The pipeline asks for the ids something else referenced (a CSAT rating, a message) but
    no list returned; ids the helpdesk no longer knows are left out of the page."""

    async def fetch_archived(self, ticket_ids: Iterable[str]) -> Page: ...


@runtime_checkable
class PollsJobs(Protocol):
    """A helpdesk whose updates run as background jobs the connector polls (Zendesk). A webhook
    worker polls sooner, and sends a lone ticket's update as one synchronous call instead."""

    job_poll_seconds: float
    single_updates: bool


@runtime_checkable
class ResumesJobs(Protocol):
    """A helpdesk that applies updates in background jobs (Zendesk `update_many`).

    `apply_updates(…, on_job=)` reports each job as soon as the helpdesk accepted it (job id,
    ticket ids), so the caller can record it before waiting; after a crash, `resume_jobs` polls
    those jobs to the end instead of sending their updates a second time. Tickets of jobs the
    helpdesk no longer knows are left out of the results."""

    async def apply_updates(
        self,
        updates: Sequence[TicketUpdate],
        *,
        on_job: Callable[[str, list[str]], None] | None = None,
    ) -> list[UpdateResult]: ...

    async def resume_jobs(self, jobs: Mapping[str, Sequence[str]]) -> list[UpdateResult]: ...


@runtime_checkable
class FetchesTickets(Protocol):
    """Read given tickets by id, as they are now, with every message (real time: a webhook
    names a ticket; the worker reads its current state instead of trusting the payload).

    One page of conversations and messages, authors' roles resolved where the helpdesk sends
    them (the pipeline looks up the rest). Tickets the helpdesk no longer knows are left out:
    the nightly sync tombstones them."""

    async def fetch_tickets(self, ticket_ids: Sequence[str]) -> Page: ...
