"""Recorded helpdesk payloads for the connectors' unit tests (tests/fixtures/payloads/, written
by its `record.py` from the bundled simulators): the vendors' documented shapes, every key a real
response has, instead of a hand-written dict per test file.

    payload("zendesk/incremental_tickets_cursor")        # the whole body, a fresh copy
    item("freshdesk/tickets", 0, id=7, tags=["vip"])     # one listed item, some fields changed
    item("zendesk/incremental_tickets_cursor", 1, of="tickets", status="deleted")

A test that varies a field copies the recorded item and changes just that field (`item`), so
what the test is about stays visible and everything else stays what the helpdesk sends.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "payloads"


@functools.cache
def _load(name: str) -> Any:
    path = FIXTURES / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no recorded payload {name!r}: run tests/fixtures/payloads/record.py"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def payload(name: str) -> Any:
    """The recorded body `vendor/name`; a deep copy, so a test may change it freely."""
    return copy.deepcopy(_load(name))


def item(name: str, index: int = 0, /, of: str | None = None, **changes: Any) -> dict[str, Any]:
    """The `index`-th item of a recorded list (a body that is a list, or the list under `of` in
    a body like `{"tickets": [...], "users": [...], "after_cursor": …}`), with `changes`."""
    body = payload(name)
    if isinstance(body, dict):
        if of is None:
            raise ValueError(f"{name} is an object: say which list (of=...)")
        body = body[of]
    return {**body[index], **changes}
