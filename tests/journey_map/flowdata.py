"""A hand-built theme database where every customer path, flow count and churn signal is known.

Period 2024-05-06 → 2024-06-03 (previous: 2024-04-08 → 2024-05-06), churn after 30 days, repeats
from 3 contacts. The expected answers are spelled out in EXPECTED and derived in the comments.
"""

from __future__ import annotations

from mapdata import Conv, load, utc
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from journey.models import Person

SINCE, UNTIL = utc(2024, 5, 6), utc(2024, 6, 3)
SHARED_HASH = "f" * 64  # one person's e-mail hash, on two helpdesks


def _c(ext: str, when: tuple[int, ...], stage: str | None, sentiment: float, who: str | None,
       theme: str | None = None, **kw: object) -> Conv:  # fmt: skip
    themes = {theme: 0.9} if theme else {}
    return Conv(ext, utc(*when), stage, sentiment, themes, requester=who,
                evidence=[f"sentence of {ext}"], **kw)  # type: ignore[arg-type]  # fmt: skip


FLOWS = [
    # A: purchase → delivery → (unstaged) → purchase (backward) → support
    _c("a1", (2024, 5, 7), "purchase", -0.5, "a", "payment_failures"),
    _c("a2", (2024, 5, 10), "delivery", -0.3, "a", "delivery_problems"),
    _c("a3", (2024, 5, 14), "purchase", -0.4, "a", "payment_failures"),
    _c("a4", (2024, 5, 16), None, 0.0, "a"),  # abstained: a contact, not a step
    _c("a5", (2024, 5, 20), "support", 0.3, "a"),
    # B: three contacts about delays (a repeat); last one negative and 19 days old (pending)
    _c("b1", (2024, 5, 8), "delivery", -0.6, "b", "delays_and_waiting"),
    _c("b2", (2024, 5, 12), "delivery", -0.6, "b", "delays_and_waiting"),
    _c("b3", (2024, 5, 15), "support", -0.7, "b", "delays_and_waiting"),
    # C: negative on 04-01, never again: its 30 days ran out on 05-01 (previous period's churn)
    _c("c1", (2024, 4, 1), "support", -0.8, "c"),
    # D: negative on 04-10, never again: 30 days end 05-10 (this period's churn, purchase)
    _c("d1", (2024, 4, 10), "purchase", -0.5, "d"),
    # E: one person on two helpdesks (same e-mail hash): exploration → purchase
    _c("e1", (2024, 5, 20), "exploration", 0.2, "e1"),
    _c("e2", (2024, 5, 22), "purchase", 0.1, "e2", source="beta"),
    # F: negative on 04-20 but back on 05-01: no churn; delivery → support in the previous period
    _c("f1", (2024, 4, 20), "delivery", -0.4, "f"),
    _c("f2", (2024, 5, 1), "support", 0.2, "f"),
    # G: negative on 04-12; its only later conversation is deleted: churn (purchase)
    _c("g1", (2024, 4, 12), "purchase", -0.6, "g"),
    _c("g2", (2024, 4, 20), "delivery", 0.5, "g", deleted=True),
    # H: no requester (an anonymous chat): in the map, in no journey
    _c("h1", (2024, 5, 9), "purchase", -0.9, None),
]

# A and B work for one organisation ("o1"); nobody else names one
for _conv in FLOWS:
    if _conv.requester in ("a", "b"):
        _conv.organization = "o1"

EXPECTED_MOVES = {
    ("purchase", "delivery"): 1,
    ("delivery", "purchase"): 1,
    ("purchase", "support"): 1,
    ("delivery", "delivery"): 1,
    ("delivery", "support"): 1,
    ("exploration", "purchase"): 1,
}
EXPECTED_PATHS = {
    ("purchase", "delivery", "purchase", "support"),
    ("delivery", "delivery", "support"),
    ("exploration", "purchase"),
}


def load_flows(engine: Engine) -> None:
    load(engine, FLOWS)
    with engine.begin() as conn:
        sources = dict(conn.execute(text("SELECT name, id FROM source")).all())
        conn.execute(
            insert(Person.__table__),
            [
                {"source_id": sources["acme"], "external_id": "e1", "role": "end_user",
                 "email_hash": SHARED_HASH},
                {"source_id": sources["beta"], "external_id": "e2", "role": "end_user",
                 "email_hash": SHARED_HASH},
                {"source_id": sources["acme"], "external_id": "a", "role": "end_user",
                 "email_hash": None},
            ],
        )  # fmt: skip
