"""Neutral records every connector produces and `journey/` stores.

Raw helpdesk JSON becomes these frozen dataclasses in pure mapper functions, so the rest of cjm
never sees a vendor shape. Timestamps are always timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Role = Literal["end_user", "agent", "system", "bot"]
ConversationKind = Literal["ticket", "chat"]


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """One ticket or chat as the helpdesk reports it now."""

    external_id: str
    kind: ConversationKind
    channel: str
    subject: str | None
    status: str
    requester_id: str | None
    created_at: datetime
    updated_at: datetime
    tags: tuple[str, ...] = ()
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    deleted: bool = False
    from_messaging: bool = False
    last_updater_id: str | None = None
    # Freshdesk (additive): when the messages last changed, if the helpdesk reports it apart
    # from `updated_at` (ticket `stats`); lets the pipeline skip a conversations call when the
    # only change was cjm's own tag/field write-back. None = unknown: compare `updated_at`.
    content_updated_at: datetime | None = None
    # The requester's organisation (Zendesk `organization_id`, Freshdesk `company_id`), for
    # journeys by organisation. None when the helpdesk gives none.
    organization_id: str | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One comment, reply, note or chat line, with the raw body as the API gave it."""

    external_id: str
    conversation_id: str
    author_id: str | None
    public: bool
    body: str
    created_at: datetime
    is_html: bool = False
    author_role: Role | None = None
    solicited: bool = False
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """A ticket field set by someone, as the helpdesk's audit trail tells it (Zendesk audits
    name the updater). `by_self` is True for the integration user (cjm), None when unknown."""

    conversation_id: str
    field: str
    value: str | None
    by_self: bool | None
    at: datetime


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """An author: only the role matters to cjm (no names or addresses are kept). `email`, when
    the helpdesk returned one, only travels to `journey` to be hashed (one customer's journeys
    merge across sources); it is never stored in clear."""

    external_id: str
    role: Role
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of one stream, with the checkpoint that resumes *after* it.

    `journey/` commits the records and the checkpoint in one transaction, so a crash can only
    repeat a page (at-least-once), never skip one.
    """

    stream: str
    checkpoint: str | None
    conversations: tuple[ConversationRecord, ...] = ()
    messages: tuple[MessageRecord, ...] = ()
    people: tuple[PersonRecord, ...] = ()
    # Freshdesk (additive): the tickets' requesters as the list returned them (include=requester),
    # for their e-mail only; their role is not asserted (an agent may raise a ticket).
    requesters: tuple[PersonRecord, ...] = ()
    # Freshdesk (additive): the conversations arrive without their messages; the pipeline asks
    # the connector's `fetch_messages` (base.FetchesMessages) for those that changed, and stores
    # them in the same transaction as this page and its checkpoint.
    messages_on_demand: bool = False
    # With `messages_on_demand`: each listed ticket's first message (Freshdesk: the ticket
    # `description`, None when empty) travels with its page and goes back to `fetch_messages`,
    # so the connector keeps no hidden per-page cache and pages may be fetched ahead.
    descriptions: tuple[tuple[str, MessageRecord | None], ...] = ()
    # Who set ticket fields, oldest first (Zendesk: from the audits of the events export).
    field_changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldIds:
    """Where cjm's own ticket fields live in one helpdesk account."""

    stage: str | None = None
    confidence: str | None = None
    stage_options: tuple[str, ...] = ()
    # (field key as it appears in ConversationRecord.custom_fields, its title), so analysts can
    # segment by "plan" or "region" instead of a numeric field id.
    names: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TicketUpdate:
    """The delta cjm wants applied to one ticket: never a full replacement."""

    external_id: str
    set_fields: tuple[tuple[str, str | None], ...] = ()
    add_tags: frozenset[str] = frozenset()
    remove_tags: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        return not (self.set_fields or self.add_tags or self.remove_tags)

    def delta_key(self) -> tuple[object, ...]:
        """Tickets with the same key can share one bulk request."""
        return (self.set_fields, tuple(sorted(self.add_tags)), tuple(sorted(self.remove_tags)))


@dataclass(frozen=True, slots=True)
class UpdateResult:
    external_id: str
    ok: bool
    error: str | None = None
