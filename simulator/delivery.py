"""Outgoing webhook deliveries of a simulated helpdesk: real HTTP POSTs from a background thread.

Why a thread of its own: a helpdesk fires its webhooks after the update that caused them has
been answered, so the API request that changed the ticket never waits for the receiver (and a
slow or dead receiver never slows the simulated API down). One sender thread keeps deliveries
in a known order, which lets the faults below change that order on purpose.

Retries follow what is known of Zendesk (../shared/notes/realtime-and-apps.md §2.3): a timeout
or a connection error is retried up to 5 times, 409 up to 3 times, 429/503 only when
`Retry-After` is under 60 seconds, other 5xx up to 5 times; any other answer is final. Freshdesk
(§3.1) retries failures after 5, 30 and 60 minutes; the delays are scaled by `retry_scale` so
tests do not wait for real minutes.

Faults for tests of the receiver: `duplicate_every` sends every n-th delivery twice (same
invocation id, as Zendesk may), `reorder_window` holds up to n deliveries and releases them in
reverse order. Every attempt lands in `attempts` (no body text: the log is for counting).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

# (retries allowed for that outcome); "timeout" covers connection errors too.
ZENDESK_RETRIES = {"timeout": 5, 409: 3, 429: 5, 503: 5, "5xx": 5}
ZENDESK_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
FRESHDESK_RETRIES = {"timeout": 3, 409: 3, 429: 3, 503: 3, "5xx": 3}
FRESHDESK_DELAYS = (300.0, 1800.0, 3600.0)
MAX_RETRY_AFTER = 60.0  # Zendesk retries a 429/503 only when Retry-After is below this
# Straight to the endpoint: an http_proxy in the environment must not carry the simulator's
# webhooks (they go to 127.0.0.1 in tests and benchmarks).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class DeliveryFaults:
    """Ways the helpdesk misbehaves towards the receiver (all off by default)."""

    duplicate_every: int = 0  # every n-th delivery is sent twice, same invocation id
    reorder_window: int = 0  # hold up to n deliveries, then send them newest first
    reorder_wait: float = 0.3  # ... or whatever arrived within this many seconds


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt: what was sent to whom and how it ended (status, or an error name)."""

    hook_id: str
    invocation_id: str
    ticket_id: int
    attempt: int
    status: int | None
    error: str | None
    at: float


@dataclass
class Delivery:
    """A webhook invocation waiting to be sent. `sign(body)` returns the headers for one
    attempt (re-signed each time: the signature timestamp is the time of sending)."""

    hook_id: str
    invocation_id: str
    ticket_id: int
    url: str
    method: str
    body: bytes
    sign: Callable[[bytes], dict[str, str]]
    attempt: int = 0
    retries: dict[str, int] = field(default_factory=dict)


class Deliverer:
    """Sends deliveries in the background; `wait_idle` lets a test wait for quiet."""

    def __init__(
        self,
        *,
        retries: dict[object, int] | None = None,
        delays: tuple[float, ...] = ZENDESK_DELAYS,
        retry_scale: float = 1.0,
        timeout_seconds: float = 12.0,
        faults: DeliveryFaults | None = None,
        name: str = "webhooks",
    ) -> None:
        self.retries = dict(retries or ZENDESK_RETRIES)
        self.delays = delays
        self.retry_scale = retry_scale
        self.timeout_seconds = timeout_seconds
        self.faults = faults or DeliveryFaults()
        self.attempts: list[Attempt] = []
        self._name = name
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Delivery]] = []  # (due time, seq, delivery)
        self._held: list[Delivery] = []
        self._held_since = 0.0
        self._seq = itertools.count()
        self._count = 0
        self._busy = False
        self._thread: threading.Thread | None = None

    # ---- producer side (called under the simulator's lock: never blocks on the network) ----

    def submit(self, delivery: Delivery) -> None:
        with self._cond:
            self._count += 1
            every = self.faults.duplicate_every
            copies = 2 if every and self._count % every == 0 else 1
            for _ in range(copies):
                item = Delivery(**{**delivery.__dict__, "retries": {}})
                if self.faults.reorder_window > 1:
                    if not self._held:
                        self._held_since = time.monotonic()
                    self._held.append(item)
                    if len(self._held) >= self.faults.reorder_window:
                        self._release_held()
                else:
                    self._schedule(item, 0.0)
            self._ensure_thread()
            self._cond.notify_all()

    def _release_held(self) -> None:
        for item in reversed(self._held):
            self._schedule(item, 0.0)
        self._held = []

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), delivery))

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, daemon=True, name=self._name)
            self._thread.start()

    # ---- observers ---------------------------------------------------------------------

    def pending(self) -> int:
        with self._cond:
            return len(self._due) + len(self._held) + int(self._busy)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, held or in flight; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._due or self._held or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    # ---- the sender thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                delivery = self._next_due()
                if delivery is None:
                    continue
                self._busy = True
            try:
                self._send(delivery)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_due(self) -> Delivery | None:
        """Under the condition: the next delivery whose time has come, or None after a wait."""
        now = time.monotonic()
        if self._held and now - self._held_since >= self.faults.reorder_wait:
            self._release_held()
        if self._due and self._due[0][0] <= now:
            return heapq.heappop(self._due)[2]
        wait = self._due[0][0] - now if self._due else 0.5
        if self._held:
            wait = min(wait, max(0.0, self._held_since + self.faults.reorder_wait - now))
        self._cond.wait(max(0.001, wait))
        return None

    def _send(self, delivery: Delivery) -> None:
        delivery.attempt += 1
        headers = {"Content-Type": "application/json", **delivery.sign(delivery.body)}
        request = urllib.request.Request(
            delivery.url, data=delivery.body, headers=headers, method=delivery.method
        )
        status: int | None = None
        error: str | None = None
        retry_after: str | None = None
        try:
            with _OPENER.open(request, timeout=self.timeout_seconds) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as exc:
            status, retry_after = exc.code, exc.headers.get("Retry-After")
            exc.close()
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            error = type(exc).__name__
        with self._cond:
            self.attempts.append(
                Attempt(
                    delivery.hook_id,
                    delivery.invocation_id,
                    delivery.ticket_id,
                    delivery.attempt,
                    status,
                    error,
                    time.time(),
                )
            )
            delay = self._retry_delay(delivery, status, retry_after)
            if delay is not None:
                self._schedule(delivery, delay)

    def _retry_delay(
        self, delivery: Delivery, status: int | None, retry_after: str | None
    ) -> float | None:
        """Seconds until the next attempt, or None when this outcome is final."""
        if status is not None and status < 300:
            return None
        kind: object
        if status is None:
            kind = "timeout"
        elif status in (409, 429, 503):
            kind = status
        elif status >= 500:
            kind = "5xx"
        else:
            return None  # 4xx other than 409/429: the receiver refused it; final
        used = delivery.retries.get(str(kind), 0)
        if used >= self.retries.get(kind, 0):
            return None
        if status in (429, 503):
            seconds = _seconds(retry_after)
            if seconds is None or seconds >= MAX_RETRY_AFTER:
                return None
            delivery.retries[str(kind)] = used + 1
            return seconds * self.retry_scale
        delivery.retries[str(kind)] = used + 1
        step = self.delays[min(delivery.attempt - 1, len(self.delays) - 1)]
        return step * self.retry_scale


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
