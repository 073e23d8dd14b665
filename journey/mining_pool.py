"""Mining on both cores: helper processes predict part of each batch while this one predicts
the rest (issue 14: re-labelling a million stored conversations after a model change).

Why processes: prediction is Python-bound (tokenising, the emotion rules, the evidence
sentences), so threads would take turns on one core. Why only for a large backlog: a helper
imports the miner and loads the model (2–6 s), which a nightly run of a few hundred conversations
would not win back, and until it is ready this process simply mines alone. Why one helper by
default: each holds its own model (~350 MiB) and DESIGN §7 bounds a sync at 1 GiB.

A helper built from the same settings must report the same model version as this process; if
it does not (the model files changed under a running sync), the run stops with a one-line error
rather than store labels from two models under one version.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from multiprocessing.pool import AsyncResult, Pool
from typing import TYPE_CHECKING, Any, Protocol

from journey.errors import CjmError

if TYPE_CHECKING:
    from journey.config import Settings
    from miner import Prediction

POOL_MIN_BACKLOG = 10_000  # conversations to (re)mine before `processes = 0` (auto) starts a helper
AUTO_PROCESSES = 2  # auto: this process + one helper (memory bound, see the docstring)
HELPER_EXTRA = 0.1  # above an even share: this process also stores each batch


class LocalMiner(Protocol):
    @property
    def version(self) -> str: ...

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...


def processes_for(configured: int, backlog: int) -> int:
    """How many processes mine a backlog: `configured` ([miner].processes) when it is set
    (≥ 1); auto (0) → up to AUTO_PROCESSES (never more than the cores) once the backlog reaches
    POOL_MIN_BACKLOG, else 1."""
    if configured >= 1:
        return configured
    if backlog < POOL_MIN_BACKLOG:
        return 1
    return max(1, min(AUTO_PROCESSES, os.cpu_count() or 1))


_helper_miner: Any = None  # the model inside a helper process (set by _load)


def _load(settings: Settings) -> None:
    global _helper_miner
    from journey.runner import MinerOptions, build_miner

    _helper_miner, _ = build_miner(MinerOptions.from_settings(settings))


def _version() -> str:
    return str(_helper_miner.version)


def _predict(texts: list[str]) -> tuple[str, list[Prediction]]:
    return str(_helper_miner.version), _helper_miner.predict(texts)


class MiningPool:
    """`helpers` extra processes sharing the predictions of each batch with this one."""

    def __init__(self, settings: Settings, helpers: int, *, wait_for_helpers: bool) -> None:
        # spawn, not fork: the sync runs an event loop and HTTP client threads, which a forked
        # child must not inherit half-locked.
        context = multiprocessing.get_context("spawn")
        self._helpers = helpers
        self._pool: Pool = context.Pool(helpers, initializer=_load, initargs=(settings,))
        self._ready: AsyncResult[str] = self._pool.apply_async(_version)
        self._wait = wait_for_helpers
        self.helped = 0  # conversations the helpers predicted (the run's summary says so)

    def start(self, local: LocalMiner, texts: Sequence[str]) -> Callable[[], list[Prediction]]:
        """Send the helpers their share of `texts` now; the returned call predicts this
        process's share and gathers theirs, in order. The sync stores the previous batch in
        between, so the helpers take a little more than an even share (HELPER_EXTRA). Unless
        told to wait for the helpers (an explicit `[miner].processes`), this process mines
        alone until a helper has its model loaded."""
        if len(texts) < 2:
            return lambda: local.predict(texts)
        if self._wait:
            self._ready.wait()
        if not self._ready.ready():
            return lambda: local.predict(texts)
        even = self._helpers / (self._helpers + 1)
        share = min(len(texts) - 1, round(len(texts) * min(0.9, even + HELPER_EXTRA)))
        step = -(-share // self._helpers)
        parts = [list(texts[i : min(i + step, share)]) for i in range(0, share, step)]
        pending = [self._pool.apply_async(_predict, (part,)) for part in parts]
        rest = texts[share:]

        def finish() -> list[Prediction]:
            own = local.predict(rest)
            theirs: list[Prediction] = []
            for result in pending:
                version, predictions = result.get()
                if version != local.version:
                    raise CjmError(
                        f"the model changed during the run ({local.version} here, {version} "
                        "in a mining helper): run the sync again"
                    )
                theirs.extend(predictions)
            self.helped += len(theirs)
            return theirs + own

        return finish

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def terminate(self) -> None:
        self._pool.terminate()
        self._pool.join()
