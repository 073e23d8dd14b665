"""`cjm demo`: the nightly job end to end against the bundled Zendesk simulator.

Given a running Zendesk-shaped helpdesk (cli.py starts the simulator on a free 127.0.0.1 port:
journey never imports `simulator`), writes a config for it, creates the fields, runs the sync
twice (the second run must write nothing) and renders the journey map. The helpdesk's token
reaches the connector through the environment mapping, as a real secret would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from journey.config import load_settings
from journey.db import open_database
from journey.runner import ConnectorFactory, run_map, run_setup_fields, run_sync
from journey.sync import Progress, SourceReport

TOKEN_ENV = "CJM_DEMO_ZENDESK_OAUTH"
DEMO_OAUTH_TOKEN = "demo-oauth-access-token"
STAGE_FIELD_TITLE = "Journey stage"

CONFIG_TEMPLATE = """\
# Written by `cjm demo`: a Zendesk-shaped simulator on this machine, no account needed.
[database]
url = "sqlite:///cjm.db"

[[sources]]
name = "acme-demo"
kind = "zendesk"
base_url = "{base_url}"
oauth_token_env = "{token_env}"

[miner]
# The demo favours coverage, so every ticket an agent opens shows a stage. Omit this key in
# production to use the miner's calibrated threshold, which abstains more and is right more often.
abstain_below = 0.2

[map]
out_dir = "map"
"""


class DemoHelpdesk(Protocol):
    """What the demo needs of the helpdesk it runs against (the simulator, served by cli.py):
    its URL (accepting `DEMO_OAUTH_TOKEN` as a bearer token) and, afterwards, how many open tickets
    with customer text it holds and how many of them carry a value in a field."""

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
) -> DemoResult:
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("cjm.db*"):
        stale.unlink()
    config = workdir / "cjm.toml"
    config.write_text(
        CONFIG_TEMPLATE.format(base_url=helpdesk.url, token_env=TOKEN_ENV), encoding="utf-8"
    )
    settings = load_settings(config, {**environ, TOKEN_ENV: DEMO_OAUTH_TOKEN})
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
    return result
