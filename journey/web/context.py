"""What every handler of `cjm serve` needs, built once at start-up by the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from journey.config import Settings


@dataclass
class WebContext:
    """Settings, the migrated database and the clock; handlers read, never mutate, these."""

    settings: Settings
    engine: Engine
    # Anything per-process the routes share (workers, the shared rate limiter, a lazily built
    # miner): keyed by the owning module's name so modules never step on each other.
    state: dict[str, object] = field(default_factory=dict)
