"""Who a conversation's customer is, as one SQL expression shared by the flows and the views.

A customer is a requester. The same person writing to two helpdesks (two sources) is one
customer when both requester records carry the same hashed e-mail (`person.email_hash`, an
HMAC-SHA256 written by the sync; the clear address is never stored). Without a hash the
customer is the requester inside its source (`<source id>:<requester id>`). Conversations
without a requester (e.g. anonymous chats) belong to no journey.

The key is computed on read, never stored, so a re-mined, merged or deleted conversation moves
every journey it touches on the next query with nothing to keep in step.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, and_, cast, func
from sqlalchemy.sql.expression import ColumnElement

from journey.models import Conversation, Person

C = Conversation.__table__
P = Person.__table__.alias("requester")


def customer_key() -> ColumnElement[str]:
    """'e:<hash>' for a requester with a hashed e-mail, else '<source id>:<requester id>'."""
    return func.coalesce(
        "e:" + P.c.email_hash,
        cast(C.c.source_id, String) + ":" + C.c.requester_id,
    )


def with_requester(joined: Any) -> Any:
    """`joined` (a FROM clause containing `conversation`) outer-joined to the requester's
    `person` row, which holds the e-mail hash when the connector returned an address."""
    return joined.outerjoin(
        P, and_(P.c.source_id == C.c.source_id, P.c.external_id == C.c.requester_id)
    )


def has_requester() -> ColumnElement[bool]:
    return C.c.requester_id.is_not(None)
