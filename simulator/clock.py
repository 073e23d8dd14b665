"""Simulated time shared by the simulators: a real UTC clock by default, frozen or advanced by
tests and benchmarks so rate windows and export ordering are deterministic."""

from __future__ import annotations

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
