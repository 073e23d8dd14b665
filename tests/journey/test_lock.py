"""Two syncs of one source never run at once, on SQLite and PostgreSQL; a dead holder frees it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from journey.errors import SyncLockedError
from journey.lock import sync_lock


def test_second_holder_is_refused_and_other_sources_are_free(engine) -> None:
    with sync_lock(engine, "acme"):
        with pytest.raises(SyncLockedError, match="already running for source .acme."):
            with sync_lock(engine, "acme"):
                pass
        with sync_lock(engine, "other"):
            pass
    with sync_lock(engine, "acme"):  # released on exit
        pass


def _hold_forever(url: str, ready) -> None:
    from journey.db import make_engine

    with sync_lock(make_engine(url), "acme"):
        ready.set()
        signal.pause()


def test_lock_of_a_killed_process_is_released(engine) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    url = engine.url.render_as_string(hide_password=False)
    child = context.Process(target=_hold_forever, args=(url, ready))
    child.start()
    try:
        assert ready.wait(30)
        with pytest.raises(SyncLockedError):
            with sync_lock(engine, "acme"):
                pass
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    # The kernel closes the dead holder's socket at once; the PostgreSQL backend notices within
    # moments. The next nightly run is hours away, so a short grace period is realistic.
    deadline = time.monotonic() + 10
    while True:
        try:
            with sync_lock(engine, "acme"):
                break
        except SyncLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
