"""The fake helpdesk host the browser tests put cjm's apps in: the simulator's sidebar preview
(simulator/preview), served at the root of its own port — one copy of the host page for the
tests and for `cjm demo --serve`. Its page embeds the app's page, served from the *packaged zip*,
on another origin, and its request proxy signs the JWT / fills the templates and calls the real
`cjm serve` over HTTP."""

from __future__ import annotations

from simulator.preview import HOST_DIR, Installation
from simulator.preview import create_preview_app as create_host_app

__all__ = ["HOST_DIR", "Installation", "create_host_app"]
