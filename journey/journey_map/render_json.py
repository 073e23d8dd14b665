"""JSON for BI tools: `JourneyMap.to_dict()` with sorted keys and fixed formatting, so the same
database gives byte-identical files (diffable, cacheable). Schema: docs/journey-map.md."""

from __future__ import annotations

import json

from journey.journey_map.model import JourneyMap


def render_json(journey_map: JourneyMap) -> str:
    return json.dumps(journey_map.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
