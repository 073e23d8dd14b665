"""The simulated Freshdesk account (plus its Freshchat) and their APIs.

``state`` (the account in memory), ``shapes`` (Freshdesk's JSON), ``routes`` (the Starlette
apps), ``limits`` (credits, rate limits and injected faults), ``http`` (error and response
shapes).
"""

from simulator.clock import VirtualClock
from simulator.freshdesk.limits import FreshdeskFaults
from simulator.freshdesk.routes import create_freshchat_app, create_freshdesk_app
from simulator.freshdesk.state import FreshdeskSimulator, FreshdeskTicketView

__all__ = [
    "FreshdeskFaults",
    "FreshdeskSimulator",
    "FreshdeskTicketView",
    "VirtualClock",
    "create_freshchat_app",
    "create_freshdesk_app",
]
