"""Who a conversation's customer is, as one SQL expression shared by the flows and the views.

A customer is a requester. The same person writing to two helpdesks (two sources) is one
customer when both requester records carry the same hashed e-mail (`person.email_hash`, an
HMAC-SHA256 written by the sync; the clear address is never stored). Without a hash the
customer is the requester inside its source (`<source id>:<requester id>`). Conversations
without a requester (e.g. anonymous chats) belong to no journey.

The raw queries compute the key on read, so a re-mined, merged or deleted conversation moves
every journey it touches on the next query. The unfiltered map reads it stored in
`journey_step` (`steps.py`, migration 0012), which the store recomputes per customer on every
such change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, and_, cast, func, or_
from sqlalchemy.sql.expression import ColumnElement

from journey.models import Conversation, Person, table

C = table(Conversation)
P = table(Person).alias("requester")


BY = ("requester", "organisation")  # what a journey follows (`cjm map --journeys-by`)


def customer_key(by: str = "requester") -> ColumnElement[str]:
    """'e:<hash>' for a requester with a hashed e-mail, else '<source id>:<requester id>'.
    By organisation: 'o:<source id>:<organisation id>' when the conversation names one (a
    requester without an organisation stays their own customer)."""
    requester = func.coalesce(
        "e:" + P.c.email_hash,
        cast(C.c.source_id, String) + ":" + C.c.requester_id,
    )
    if by == "organisation":
        return func.coalesce(
            "o:" + cast(C.c.source_id, String) + ":" + C.c.organization_id, requester
        )
    return requester


def with_requester(joined: Any) -> Any:
    """`joined` (a FROM clause containing `conversation`) outer-joined to the requester's
    `person` row, which holds the e-mail hash when the connector returned an address."""
    return joined.outerjoin(
        P, and_(P.c.source_id == C.c.source_id, P.c.external_id == C.c.requester_id)
    )


def has_requester(by: str = "requester") -> ColumnElement[bool]:
    """Conversations that belong to a journey (the rest count in the map, not in journeys)."""
    if by == "organisation":
        return or_(C.c.requester_id.is_not(None), C.c.organization_id.is_not(None))
    return C.c.requester_id.is_not(None)
