"""Test doubles shared by the connector tests."""

from __future__ import annotations

import asyncio


class FakeClock:
    """Time that only moves when someone sleeps: retry waits are asserted, not waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would
