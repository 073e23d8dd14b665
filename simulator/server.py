"""Run an ASGI app (the simulator) with uvicorn, in a background thread or in the foreground.

Why a thread: tests and benchmarks want a real localhost port (real sockets, real timeouts) in
the same process as the code under test, without managing a subprocess. Always binds 127.0.0.1:
the simulator has fake credentials and must never be reachable from the network.
"""

from __future__ import annotations

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


def serve_in_thread(
    app: Any, port: int = 0, host: str = LOCALHOST, startup_timeout: float = 10.0
) -> RunningServer:
    """Start ``app`` on 127.0.0.1 (``port=0`` picks a free port) and return once it accepts
    connections. ``host`` is accepted for symmetry but anything other than 127.0.0.1 is refused.
    """
    if host != LOCALHOST:
        raise ValueError("the simulator only binds 127.0.0.1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOCALHOST, port))
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


def run(app: Any, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` until interrupted (``cjm simulate``)."""
    uvicorn.run(app, host=LOCALHOST, port=port, log_level="warning")
