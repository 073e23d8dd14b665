"""`cjm demo`: the nightly job end to end against the bundled Zendesk simulator.

Given a running Zendesk-shaped helpdesk (cli.py starts the simulator on a free 127.0.0.1 port:
journey never imports `simulator`), writes a config for it, creates the fields, runs the sync
twice (the second run must write nothing) and renders the journey map. Then, unless told not
to, the live part (journey/demo_live.py): `cjm serve` in-process, `setup-webhook` against the
simulator, a customer writes and the ticket gets its stage seconds later. The helpdesk's token,
the Fernet key that encrypts the webhook signing secret (generated per run, never printed) and
the agent app's shared secret reach cjm through the environment mapping, as real secrets would.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from journey.config import load_settings
from journey.db import open_database
from journey.demo_live import LiveHelpdesk, LiveResult, run_live
from journey.runner import ConnectorFactory, run_map, run_setup_fields, run_sync
from journey.sync import Progress, SourceReport

TOKEN_ENV = "CJM_DEMO_ZENDESK_OAUTH"
KEY_ENV = "CJM_DEMO_CREDENTIAL_KEY"  # Fernet key for the webhook signing secret
APP_SECRET_ENV = "CJM_DEMO_APP_SECRET"  # the Zendesk app's shared secret (JWT)
SOURCE_NAME = "acme-demo"
DEMO_OAUTH_TOKEN = "demo-oauth-access-token"
STAGE_FIELD_TITLE = "Journey stage"

CONFIG_TEMPLATE = """\
# Written by `cjm demo`: a Zendesk-shaped simulator on this machine, no account needed.
[database]
url = "sqlite:///cjm.db"

[[sources]]
name = "{source}"
kind = "zendesk"
base_url = "{base_url}"
oauth_token_env = "{token_env}"
# Real time (`cjm serve`): setup-webhook stores the signing secret encrypted with this key.
credential_key_env = "{key_env}"
# The agent app's shared secret (its requests carry an HS256 JWT signed with it).
app_secret_env = "{app_secret_env}"

[miner]
# The demo favours coverage, so every ticket an agent opens shows a stage. Omit this key in
# production to use the miner's calibrated threshold, which abstains more and is right more often.
abstain_below = 0.2

[map]
out_dir = "map"
"""


class DemoHelpdesk(LiveHelpdesk, Protocol):
    """What the demo needs of the helpdesk it runs against (the simulator, served by cli.py):
    its URL (accepting `DEMO_OAUTH_TOKEN` as a bearer token), afterwards how many open tickets
    with customer text it holds and how many of them carry a value in a field, and what the live
    part needs (LiveHelpdesk)."""

    @property
    def url(self) -> str: ...

    def field_coverage(self, title: str) -> tuple[int, int]: ...


@dataclass
class DemoResult:
    reports: list[SourceReport]
    second_run: list[SourceReport]
    maps: list[Path] = field(default_factory=list)
    staged: int = 0
    open_with_text: int = 0
    live: LiveResult | None = None

    @property
    def staged_share(self) -> float:
        return self.staged / self.open_with_text if self.open_with_text else 0.0


def run_demo(
    workdir: Path,
    helpdesk: DemoHelpdesk,
    *,
    connector_factory: ConnectorFactory,
    environ: Mapping[str, str],
    progress: Progress = lambda _m: None,
    live: bool = True,
    keep_serving: bool = False,
) -> DemoResult:
    """The demo in `workdir`. `live`: also the real-time part; `keep_serving`: leave its `cjm
    serve` running (`result.live.server`, the caller stops it) for `cjm demo --serve`."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("cjm.db*"):
        stale.unlink()
    config = workdir / "cjm.toml"
    config.write_text(
        CONFIG_TEMPLATE.format(
            source=SOURCE_NAME,
            base_url=helpdesk.url,
            token_env=TOKEN_ENV,
            key_env=KEY_ENV,
            app_secret_env=APP_SECRET_ENV,
        ),
        encoding="utf-8",
    )
    from cryptography.fernet import Fernet

    demo_env = {
        TOKEN_ENV: DEMO_OAUTH_TOKEN,
        KEY_ENV: environ.get(KEY_ENV) or Fernet.generate_key().decode(),
        APP_SECRET_ENV: environ.get(APP_SECRET_ENV) or secrets.token_urlsafe(32),
    }
    settings = load_settings(config, {**environ, **demo_env})
    engine = open_database(settings.database_url)
    progress("creating the Journey stage fields")
    asyncio.run(run_setup_fields(settings, connector_factory=connector_factory, engine=engine))
    progress("first sync: pull, mine, write back")
    reports = asyncio.run(
        run_sync(settings, connector_factory=connector_factory, progress=progress, engine=engine)
    )
    progress("second sync: nothing changed, so nothing may be written")
    second = asyncio.run(
        run_sync(settings, connector_factory=connector_factory, progress=progress, engine=engine)
    )
    result = DemoResult(reports=reports, second_run=second)
    for fmt in ("html", "md", "json"):
        result.maps.append(run_map(settings, fmt=fmt, engine=engine))
    result.open_with_text, result.staged = helpdesk.field_coverage(STAGE_FIELD_TITLE)
    if live:
        result.live = run_live(
            settings,
            engine,
            helpdesk,
            connector_factory=connector_factory,
            keep_serving=keep_serving,
            progress=progress,
        )
    return result
