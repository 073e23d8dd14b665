"""The protocol every helpdesk connector satisfies; `journey/` depends on this, not on a vendor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from connectors.http import CallStats
from connectors.records import FieldIds, Page, PersonRecord, TicketUpdate, UpdateResult


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
