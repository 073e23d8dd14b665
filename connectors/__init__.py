"""Everything that talks to a helpdesk API (pull and push).

Imports only httpx and the standard library. Never imports `miner`, `journey` or `simulator`
(the bundled helpdesk simulators live in the top-level `simulator` package).
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
