"""The bundled helpdesk simulators: real HTTP servers speaking Zendesk's and Freshdesk's (and
Freshchat's) API shapes, with their limits, faults and planted ground truth.

Used by ``cjm demo`` / ``cjm simulate``, the integration tests and the benchmarks. Imports only
the standard library, starlette, (in ``server``) uvicorn and (in ``preview``'s request proxy)
httpx — never ``connectors``, ``miner``,
``journey`` or ``cli`` (import-linter contracts in pyproject.toml), and only cli.py, tests and
bench import it.

Layout: ``zendesk/`` and ``freshdesk/`` each split into ``state`` (the account in memory),
``shapes`` (the vendor's JSON), ``routes`` (the Starlette app) and ``limits`` (rate limits and
injected faults), plus webhooks (``zendesk/webhooks`` + ``webhook_routes``: webhooks, triggers
and signing secrets; ``freshdesk/webhooks`` + ``admin``: automation rules) and simulator-only
``/_sim/…`` admin routes; ``delivery`` sends their webhooks over real HTTP in the background;
``preview`` is the sidebar preview (a fake helpdesk host page with cjm's apps, at
``/_sim/preview/{vendor}?ticket=ID`` when ``create_zendesk_app(preview=…)`` is given the
installations); ``corpus`` writes the ticket texts, ``clock`` is the shared simulated time,
``server`` runs an app on 127.0.0.1.
"""

from .freshdesk import (
    FreshdeskFaults,
    FreshdeskSimulator,
    VirtualClock,
    create_freshchat_app,
    create_freshdesk_app,
)
from .server import PortError, RunningServer, bind, run, serve_in_thread
from .zendesk import PlantedSpike, SimulatorFaults, TicketView, ZendeskSimulator, create_zendesk_app

__all__ = [
    "FreshdeskFaults",
    "FreshdeskSimulator",
    "PlantedSpike",
    "RunningServer",
    "SimulatorFaults",
    "TicketView",
    "VirtualClock",
    "ZendeskSimulator",
    "create_freshchat_app",
    "create_freshdesk_app",
    "create_zendesk_app",
    "run",
    "bind",
    "PortError",
    "serve_in_thread",
]
