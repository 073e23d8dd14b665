"""The bundled helpdesk simulator: a real HTTP server speaking Zendesk's API shapes.

Used by ``cjm demo``, the integration tests and the benchmarks. Imports only the standard
library, starlette and (in ``server``) uvicorn — never ``miner``, ``journey`` or ``cli``.
"""

from .freshdesk import FreshdeskFaults as FreshdeskFaults, FreshdeskSimulator as FreshdeskSimulator, VirtualClock as VirtualClock, create_freshchat_app as create_freshchat_app, create_freshdesk_app as create_freshdesk_app  # noqa: E501,I001 - Freshdesk
from .server import RunningServer, run, serve_in_thread
from .zendesk import PlantedSpike, SimulatorFaults, TicketView, ZendeskSimulator, create_zendesk_app

__all__ = [
    "PlantedSpike",
    "RunningServer",
    "SimulatorFaults",
    "TicketView",
    "ZendeskSimulator",
    "create_zendesk_app",
    "run",
    "serve_in_thread",
]
