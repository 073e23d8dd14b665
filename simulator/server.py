"""Run an ASGI app (the simulator) with uvicorn, in a background thread or in the foreground.

Why a thread: tests and benchmarks want a real localhost port (real sockets, real timeouts) in
the same process as the code under test, without managing a subprocess. Always binds 127.0.0.1:
the simulator has fake credentials and must never be reachable from the network.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

LOCALHOST = "127.0.0.1"


@dataclass
class RunningServer:
    """A uvicorn server running in a daemon thread; ``stop()`` shuts it down and joins."""

    host: str
    port: int
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _config(app: Any, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=LOCALHOST, port=port, log_level="warning", access_log=False, lifespan="off"
    )


class PortError(Exception):
    """The port cannot be used: `invalid` (not 0–65535, a usage error) or taken/forbidden."""

    def __init__(self, message: str, *, invalid: bool) -> None:
        super().__init__(message)
        self.invalid = invalid


def bind(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:``port`` (0: a free one), or a one-line PortError.

    Binding before the server starts (and before anything is printed) turns uvicorn's traceback
    or "[Errno 98]" log line into one sentence naming the fix."""
    if not 0 <= port <= 65535:
        raise PortError(f"--port {port} is not a port: use 1–65535 (e.g. 8085)", invalid=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOCALHOST, port))
    except OSError as exc:
        sock.close()
        reason = (
            "is already in use"
            if exc.errno == errno.EADDRINUSE
            else f"cannot be used ({exc.strerror})"
        )
        raise PortError(
            f"port {port} on {LOCALHOST} {reason}: pick another --port, or stop what runs there",
            invalid=False,
        ) from None
    return sock


def serve_in_thread(
    app: Any,
    port: int = 0,
    host: str = LOCALHOST,
    startup_timeout: float = 10.0,
    sock: socket.socket | None = None,
) -> RunningServer:
    """Start ``app`` on 127.0.0.1 (``port=0`` picks a free port; or on an already bound
    ``sock``) and return once it accepts connections. ``host`` is accepted for symmetry but
    anything other than 127.0.0.1 is refused.
    """
    if host != LOCALHOST:
        raise ValueError("the simulator only binds 127.0.0.1")
    sock = sock or bind(port)
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, bound_port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"zendesk-sim-{bound_port}"
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"simulator failed to start on {LOCALHOST}:{bound_port}")
        time.sleep(0.01)
    return RunningServer(LOCALHOST, bound_port, server, thread)


def run(app: Any, port: int = 0, sock: socket.socket | None = None) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` (or an already bound ``sock``) until interrupted
    (``cjm simulate``); a port that cannot be used is a PortError before anything starts."""
    sock = sock or bind(port)
    uvicorn.Server(_config(app, sock.getsockname()[1])).run(sockets=[sock])
