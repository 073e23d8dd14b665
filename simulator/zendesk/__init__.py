"""The simulated Zendesk Support account and its API.

``state`` (the account in memory), ``shapes`` (Zendesk's JSON), ``routes`` (the Starlette app),
``limits`` (rate limits and injected faults), ``http`` (error and response shapes),
``webhooks`` / ``webhook_routes`` (webhooks, triggers, signed deliveries, admin routes).
"""

from .limits import SimulatorFaults
from .routes import create_zendesk_app
from .state import INTEGRATION_USER_ID, PlantedSpike, TicketView, ZendeskSimulator

__all__ = [
    "INTEGRATION_USER_ID",
    "PlantedSpike",
    "SimulatorFaults",
    "TicketView",
    "ZendeskSimulator",
    "create_zendesk_app",
]
