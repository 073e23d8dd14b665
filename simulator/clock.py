"""Simulated time shared by the simulators: a real UTC clock by default, frozen or advanced by
tests and benchmarks so rate windows and export ordering are deterministic; `VirtualClock` is
shared with a connector too (its `monotonic`/`sleep`), so waits for rate limits take no time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimulatedClock:
    """Mixin: `self.clock` is a callable returning aware UTC time (set by the simulator)."""

    clock: Callable[[], datetime]

    @property
    def now(self) -> datetime:
        """Simulator time (aware UTC) from the injected clock."""
        return self.clock()

    @now.setter
    def now(self, value: datetime) -> None:
        frozen = value.astimezone(UTC)
        self.clock = lambda: frozen

    def advance(self, seconds: float) -> None:
        """Move a frozen clock forward (tests of rate windows and export ordering)."""
        self.now = self.now + timedelta(seconds=seconds)

    def now_ts(self) -> int:
        """Simulator time as whole epoch seconds."""
        return int(self.clock().timestamp())


class VirtualClock:
    """Simulated time shared by the simulator (`clock()` → datetime) and a connector
    (`monotonic()` / `sleep()`): a sync that would wait 20 minutes for the rate limit runs in
    seconds, and rate-limit windows stay consistent on both sides."""

    def __init__(self, start: datetime) -> None:
        self._epoch = start.timestamp()
        self.elapsed = 0.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self._epoch + self.elapsed, UTC)

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        target = self.elapsed + max(0.0, seconds)
        await asyncio.sleep(0)
        self.elapsed = max(self.elapsed, target)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds
