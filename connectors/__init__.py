"""Everything that talks to a helpdesk API (pull and push), plus the bundled simulators.

Imports only httpx and the standard library (the simulators: starlette and uvicorn). Never
imports `miner` or `journey`.
"""

from connectors.base import HelpdeskConnector
from connectors.errors import (
    ApiError,
    AuthError,
    ConnectorError,
    NotFoundError,
    RateLimitedError,
    UnreachableError,
)
from connectors.records import (
    ConversationRecord,
    FieldIds,
    MessageRecord,
    Page,
    PersonRecord,
    TicketUpdate,
    UpdateResult,
)

__all__ = [
    "ApiError",
    "AuthError",
    "ConnectorError",
    "ConversationRecord",
    "FieldIds",
    "HelpdeskConnector",
    "MessageRecord",
    "NotFoundError",
    "Page",
    "PersonRecord",
    "RateLimitedError",
    "TicketUpdate",
    "UnreachableError",
    "UpdateResult",
]
