"""The bundled helpdesk simulator: a real HTTP server speaking Zendesk's API shapes.

Used by ``cjm demo``, the integration tests and the benchmarks. Imports only the standard
library, starlette and (in ``server``) uvicorn — never ``miner``, ``journey`` or ``cli``.
"""

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
