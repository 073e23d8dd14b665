"""`cjm serve`: the Starlette app behind the webhooks, the app API, the live map and labelling.

`create_app(context)` builds it; each module contributes its routes:
- `hooks` — signed helpdesk webhooks → the durable `webhook_event` queue (202 at once);
- `health` — `GET /healthz`;
- `api` — `/api/v1` for the agent sidebar apps (JWT / bearer, CORS to the helpdesk domains);
- `pages` — `GET /map` (the live journey map) and `GET /label` (the labelling page).
Handlers stay thin: they parse and authenticate, then call the same `journey` functions as the CLI.
"""

from journey.web.app import create_app
from journey.web.context import WebContext

__all__ = ["WebContext", "create_app"]
